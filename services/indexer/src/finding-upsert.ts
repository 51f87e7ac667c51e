import type { Client } from '@elastic/elasticsearch';
import { backoffDelayMs } from '@kaudit/common';
import type { ItemResult } from './bulk-writer';
import type { BulkItem } from './decode-message';

/**
 * Findings are written by id and updated in place (ADR 0010): the detector reports a finding as soon as
 * it can and sends later revisions of the same id as evidence joins. A data stream takes only `create`,
 * so a later revision goes, as an `index` with if_seq_no/if_primary_term, to the backing index that
 * holds the id. Before a chunk is written: of several revisions of one id only the highest is written;
 * a revision above 1 is looked up (a real-time mget over the stream's backing indices) and written over
 * a lower stored one, dropped (a duplicate) if the stored one is as high, created if none is stored.
 * Revision 1 is a plain `create` (a re-delivery is a 409, as before). One indexer owns an id at a time
 * (the alerts topic is keyed by finding id), so the seq_no guard only loses to a rebalance overlap;
 * that 409 then counts as a duplicate and the next revision carries everything anyway.
 */
export async function upsertFindings(
  client: Client,
  dataStream: string,
  items: BulkItem[],
  write: (items: BulkItem[]) => Promise<ItemResult[]>,
  /** Between attempts of the look-up while Elasticsearch does not answer (throws to abandon). */
  wait: (delayMs: number) => Promise<void>,
): Promise<ItemResult[]> {
  const results: Array<ItemResult | undefined> = new Array(items.length);
  const highest = new Map<string, number>();
  items.forEach((item, i) => {
    const best = highest.get(item.id);
    if (best === undefined || (item.revision ?? 1) >= (items[best]!.revision ?? 1)) {
      if (best !== undefined) results[best] = { result: 'duplicate' };
      highest.set(item.id, i);
    } else results[i] = { result: 'duplicate' };
  });
  const later = [...highest.values()].filter((i) => (items[i]!.revision ?? 1) > 1);
  const planned = items.slice();
  if (later.length > 0) {
    const ids = later.map((i) => items[i]!.id);
    let stored: Map<string, Stored> | undefined;
    for (let attempt = 0; !stored; attempt++) {
      stored = await lookUp(client, dataStream, ids).catch(async () => {
        await wait(backoffDelayMs(attempt, { initialDelayMs: 200, maxDelayMs: 30_000, jitter: 'none' }));
        return undefined;
      });
    }
    for (const i of later) {
      const item = items[i]!;
      const found = stored.get(item.id);
      if (!found) continue;
      if (found.revision >= (item.revision ?? 1)) {
        results[i] = { result: 'duplicate' };
        continue;
      }
      const action = {
        index: {
          _index: found.index,
          _id: item.id,
          if_seq_no: found.seqNo,
          if_primary_term: found.primaryTerm,
        },
      };
      const doc = item.lines.slice(item.lines.indexOf('\n') + 1);
      const lines = `${JSON.stringify(action)}\n${doc}`;
      planned[i] = { ...item, lines, bytes: Buffer.byteLength(lines) };
    }
  }
  const pending = planned.flatMap((item, i) => (results[i] ? [] : [{ item, i }]));
  const written = pending.length > 0 ? await write(pending.map((p) => p.item)) : [];
  pending.forEach((p, n) => {
    results[p.i] = written[n]!;
  });
  return results as ItemResult[];
}

interface Stored {
  index: string;
  seqNo: number;
  primaryTerm: number;
  revision: number;
}

/** Where each id is stored and at which revision: a real-time read, unlike a search. */
async function lookUp(client: Client, dataStream: string, ids: string[]): Promise<Map<string, Stored>> {
  // _resolve/index is core Elasticsearch (the _data_stream API is not in every distribution).
  const resolved = await client.indices.resolveIndex({ name: dataStream });
  const backing = resolved.data_streams.find((s) => s.name === dataStream)?.backing_indices ?? [];
  const indices = Array.isArray(backing) ? backing : [backing];
  const found = new Map<string, Stored>();
  if (indices.length === 0) return found;
  const response = await client.mget<{ kaudit?: { finding?: { revision?: number } } }>({
    docs: indices.flatMap((index) =>
      ids.map((id) => ({ _index: index, _id: id, _source: ['kaudit.finding.revision'] })),
    ),
  });
  for (const doc of response.docs) {
    if (!('found' in doc) || !doc.found) continue;
    const revision = doc._source?.kaudit?.finding?.revision ?? 1;
    const known = found.get(doc._id);
    if (known && known.revision >= revision) continue;
    found.set(doc._id, {
      index: doc._index,
      seqNo: doc._seq_no!,
      primaryTerm: doc._primary_term!,
      revision,
    });
  }
  return found;
}

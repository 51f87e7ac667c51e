import type { Client } from '@elastic/elasticsearch';
import { AppError } from '@kaudit/common';
import { dataStreamExists } from './apply';
import { DATASETS, dataStreamName, eventsNamespace, legacyEventsStreamName } from './names';
import { isMissingApi } from './stream-lifecycle';

/**
 * ADR 0008 moved audit events from `logs-kaudit.audit-<ns>` to `logs-kubernetes.audit_logs-kaudit*`.
 * `kaudit es-setup --migrate-legacy` copies what the old stream holds into the new one, client-side
 * (scroll + bulk create: no _reindex, ingest pipeline or Painless needed, so it runs on every
 * distribution), keeping each document's content id, so a second run creates nothing twice and an
 * interrupted run can simply be repeated. The old stream is deleted only when asked and only once
 * every one of its documents is known to be in the new stream.
 */

export interface LegacyMigrationOptions {
  namespace: string;
  /** Delete the old data stream after a complete copy. */
  deleteLegacy?: boolean;
  batchSize?: number;
  log?: (message: string) => void;
}

export interface LegacyMigrationResult {
  from: string;
  to: string;
  outcome: 'no-legacy-stream' | 'migrated';
  /** Documents the old stream held when the copy started. */
  total: number;
  copied: number;
  /** Already in the new stream (an earlier run, or the same event indexed twice). */
  existed: number;
  deleted: boolean;
  /** Deletion was asked for but the cluster has no delete-data-stream API (the integ-test distribution). */
  deleteUnsupported?: boolean;
}

/** An old document as it belongs in the new stream: only data_stream.* changes. Pure. */
export function migratedEventDocument(
  source: Record<string, unknown>,
  namespace: string,
): Record<string, unknown> {
  return {
    ...source,
    data_stream: { type: 'logs', dataset: DATASETS.events, namespace: eventsNamespace(namespace) },
  };
}

interface BulkItem {
  create?: { status: number; error?: { type?: string; reason?: string } };
}

export async function migrateLegacyEvents(
  client: Client,
  options: LegacyMigrationOptions,
): Promise<LegacyMigrationResult> {
  const from = legacyEventsStreamName(options.namespace);
  const to = dataStreamName('events', options.namespace);
  const result: LegacyMigrationResult = {
    from,
    to,
    outcome: 'no-legacy-stream',
    total: 0,
    copied: 0,
    existed: 0,
    deleted: false,
  };
  if (!(await dataStreamExists(client, from))) return result;
  result.outcome = 'migrated';
  result.total = (await client.count({ index: from })).count;
  let page = await client.search<Record<string, unknown>>({
    index: from,
    scroll: '2m',
    size: options.batchSize ?? 1000,
    sort: ['_doc'],
  });
  try {
    while (page.hits.hits.length > 0) {
      const operations = page.hits.hits.flatMap((hit) => [
        { create: { _index: to, _id: hit._id } },
        migratedEventDocument(hit._source ?? {}, options.namespace),
      ]);
      const reply = await client.bulk({ operations, refresh: false });
      for (const item of reply.items as BulkItem[]) {
        const status = item.create?.status ?? 0;
        if (status === 201) result.copied++;
        else if (status === 409) result.existed++;
        else
          throw new AppError(
            'KAUDIT_ERR_ELASTICSEARCH',
            `copying ${from} into ${to} failed (${status}): ${item.create?.error?.reason ?? 'unknown reason'}; nothing was deleted, run again once fixed`,
          );
      }
      options.log?.(`copied ${result.copied + result.existed} of ${result.total} from ${from} into ${to}`);
      if (!page._scroll_id) break;
      page = await client.scroll<Record<string, unknown>>({ scroll_id: page._scroll_id, scroll: '2m' });
    }
  } finally {
    if (page._scroll_id) await client.clearScroll({ scroll_id: page._scroll_id }).catch(() => undefined);
  }
  if (options.deleteLegacy) {
    if (result.copied + result.existed < result.total)
      throw new AppError(
        'KAUDIT_ERR_ELASTICSEARCH',
        `${from} not deleted: only ${result.copied + result.existed} of its ${result.total} documents were copied`,
      );
    try {
      await client.indices.deleteDataStream({ name: from });
      result.deleted = true;
    } catch (error) {
      if (!isMissingApi(error)) throw error;
      result.deleteUnsupported = true;
      options.log?.(`${from} kept: this cluster has no API to delete a data stream; delete it by hand`);
    }
  }
  return result;
}

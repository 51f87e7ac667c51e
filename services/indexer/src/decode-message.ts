import {
  AUDIT_FIELD_NAMES,
  type Envelope,
  EnvelopeSchema,
  FindingSchema,
  formatInputIssues,
  isEnvelope,
} from '@kaudit/audit-schema';

/** Field names a finding's dead-letter reason may name (anything else is written `*`). */
const FINDING_FIELDS: ReadonlySet<string> = new Set([
  ...AUDIT_FIELD_NAMES,
  ...Object.keys(FindingSchema.shape),
]);

import { type DatasetKind, toEventDocument, toFindingDocument } from '@kaudit/es-resources';

/** One document ready for _bulk: its action and source lines, serialised once. */
export interface BulkItem {
  kind: DatasetKind;
  index: string;
  id: string;
  /** `{"create":{...}}\n{document}\n` */
  lines: string;
  bytes: number;
  cluster: string;
  /** A finding's revision (finding-upsert.ts: the highest is kept). */
  revision?: number;
}

export type Decoded =
  | { ok: true; item: BulkItem }
  | { ok: false; reason: string; raw: unknown; cluster: string | undefined }
  /** A chain step's copy (Envelope.copy): for the detector only; its original is indexed. */
  | { ok: 'copy' };

/** Serialises one document as the two lines of a `create` in a _bulk body. */
export function bulkLines(index: string, id: string, doc: unknown): { lines: string; bytes: number } {
  const lines = `${JSON.stringify({ create: { _index: index, _id: id } })}\n${JSON.stringify(doc)}\n`;
  return { lines, bytes: Buffer.byteLength(lines) };
}

/**
 * A Kafka message value from the events topic (an Envelope) or the alerts topic (a Finding) as a bulk
 * item for the data stream of its kind; a chain step's copy is left out; anything else is reported with
 * its reason for the dead-letter topic. Pure.
 */
export function decodeMessage(
  kind: DatasetKind,
  value: Buffer | null,
  dataStreams: Record<DatasetKind, string>,
  namespace: string,
): Decoded {
  if (value === null)
    return { ok: false, reason: 'empty message value (tombstone)', raw: null, cluster: undefined };
  const text = value.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      reason: `not valid JSON: ${(error as Error).message}`,
      raw: text,
      cluster: undefined,
    };
  }
  const cluster = (json as { cluster?: unknown } | null)?.cluster;
  const clusterName = typeof cluster === 'string' ? cluster : undefined;
  const index = dataStreams[kind];
  if (kind === 'events') {
    const envelope = eventEnvelope(json);
    if (!envelope.ok) {
      return {
        ok: false,
        reason: `not an event envelope: ${envelope.reason}`,
        raw: json,
        cluster: clusterName,
      };
    }
    if (envelope.value.copy !== undefined) return { ok: 'copy' };
    const { _id, doc } = toEventDocument(envelope.value, { namespace });
    return {
      ok: true,
      item: { kind, index, id: _id, cluster: envelope.value.cluster, ...bulkLines(index, _id, doc) },
    };
  }
  const finding = FindingSchema.safeParse(json);
  if (!finding.success) {
    return {
      ok: false,
      reason: `not a finding: ${formatInputIssues(finding.error, FINDING_FIELDS)}`,
      raw: json,
      cluster: clusterName,
    };
  }
  const { _id, doc } = toFindingDocument(finding.data, { namespace });
  return {
    ok: true,
    item: {
      kind,
      index,
      id: _id,
      cluster: finding.data.cluster,
      revision: finding.data.revision ?? 1,
      ...bulkLines(index, _id, doc),
    },
  };
}

/**
 * The envelope as the schema would return it. The schema costs more than the rest of the decoding per
 * event, so the hand-written check that is never more lenient (isEnvelope, as the detector uses it)
 * comes first; only what it does not accept goes through the schema, for its verdict or its reason.
 */
function eventEnvelope(json: unknown): { ok: true; value: Envelope } | { ok: false; reason: string } {
  if (isEnvelope(json)) {
    const { cluster, receivedAt, event, copy } = json;
    return {
      ok: true,
      value: copy === undefined ? { cluster, receivedAt, event } : { cluster, receivedAt, event, copy },
    };
  }
  const parsed = EnvelopeSchema.safeParse(json);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, reason: formatInputIssues(parsed.error) };
}

/**
 * Splits entries into consecutive chunks of at most maxDocs entries and maxBytes bytes (an entry
 * larger than maxBytes travels alone). Order is kept: offsets are committed chunk by chunk.
 */
export function* chunkByLimits<T>(
  entries: Iterable<T>,
  size: (entry: T) => number,
  maxDocs: number,
  maxBytes: number,
): Generator<T[], undefined> {
  let current: T[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const entryBytes = size(entry);
    if (current.length > 0 && (current.length >= maxDocs || bytes + entryBytes > maxBytes)) {
      yield current;
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += entryBytes;
  }
  if (current.length > 0) yield current;
  return undefined;
}

import { isIP } from 'node:net';

/** The ECS version the templates follow (ecs.version on every document). */
export const ECS_VERSION = '8.11.0';

/** A document as sent to Elasticsearch, with the _id it is created under. */
export interface EsDocument {
  _id: string;
  doc: Record<string, unknown>;
}

export const isIpAddress = (value: string | undefined): value is string =>
  value !== undefined && isIP(value) !== 0;

/** Drops undefined values and duplicates, keeping first-seen order. */
export function unique<T>(values: Array<T | undefined>): T[] {
  return [...new Set(values.filter((value): value is T => value !== undefined))];
}

/**
 * Removes undefined fields and empty objects/arrays at every depth, so documents carry only what the
 * event said (an absent field stays absent rather than becoming null).
 */
export function compact<T>(value: T): T {
  return compactValue(value) as T;
}

function compactValue(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(compactValue).filter((item) => item !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (value === null || typeof value !== 'object') return value;
  // Per document on the indexer's hot path: no entry pairs, no second pass to count the keys kept.
  const record = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  let kept = 0;
  for (const key of Object.keys(record)) {
    const compacted = compactValue(record[key]);
    if (compacted !== undefined) {
      out[key] = compacted;
      kept++;
    }
  }
  return kept > 0 ? out : undefined;
}

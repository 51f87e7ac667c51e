import { safeJsonError } from './json-error';

/**
 * Azure diagnostic settings write AKS audit logs (categories `kube-audit`, `kube-audit-admin`) as
 * `{"records":[{"category":"kube-audit","resourceId":"/SUBSCRIPTIONS/…/MANAGEDCLUSTERS/<name>",
 * "properties":{"log":"<event JSON>","pod":"kube-apiserver-…"}}]}`. One record -> the event inside it.
 * The one implementation for files (decode.ts), the sink's streaming reader and the bridge.
 */
export type EventHubRecordResult =
  | { ok: true; raw: unknown; cluster?: string }
  | { ok: false; reason: string; cluster?: string };

export function unwrapEventHubRecord(record: unknown): EventHubRecordResult {
  const cluster = aksClusterFromResourceId((record as { resourceId?: unknown } | null)?.resourceId);
  const where = cluster === undefined ? {} : { cluster };
  const log = (record as { properties?: { log?: unknown } } | null)?.properties?.log;
  if (typeof log !== 'string') return { ok: true, raw: record, ...where };
  try {
    return { ok: true, raw: JSON.parse(log), ...where };
  } catch (error) {
    return {
      ok: false,
      reason: `Event Hubs record's properties.log is not valid JSON (${safeJsonError(error)})`,
      ...where,
    };
  }
}

/** `…/providers/Microsoft.ContainerService/managedClusters/<name>` (Azure writes it upper-case). */
export function aksClusterFromResourceId(resourceId: unknown): string | undefined {
  if (typeof resourceId !== 'string') return undefined;
  const match = /\/MANAGEDCLUSTERS\/([^/]+)\/?$/i.exec(resourceId);
  // Azure upper-cases the whole id; cluster names are case-insensitive there, so lower-case is the name.
  return match ? match[1]!.toLowerCase() : undefined;
}

/** A single diagnostic-settings record (not inside `records`): `properties.log` is a string. */
export function isEventHubRecord(value: unknown): boolean {
  const record = value as { properties?: { log?: unknown }; category?: unknown } | null;
  return typeof record?.properties?.log === 'string' && typeof record.category === 'string';
}

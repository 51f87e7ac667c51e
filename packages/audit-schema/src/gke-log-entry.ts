import type { DecodedItem } from './decode';

/**
 * GKE writes Kubernetes audit events to Cloud Logging as Cloud Audit Logs `LogEntry`s (resource.type
 * `k8s_cluster`, protoPayload `type.googleapis.com/google.cloud.audit.AuditLog`, serviceName `k8s.io`):
 * methodName `io.k8s.<group>.<version>.<resource>[.<subresource>].<verb>`, resourceName
 * `<group>/<version>[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]]` (`core` for the core group),
 * authenticationInfo.principalEmail, requestMetadata.callerIp / callerSuppliedUserAgent, status (a
 * google.rpc.Status), request / response, the entry's labels (`authorization.k8s.io/decision`, …) and
 * its timestamp. This turns one into the audit.k8s.io/v1 Event the rest of kaudit reads.
 *
 * What the LogEntry does not carry is never made up as if it were known: fields the Event schema
 * requires are derived and named in `kaudit.dev/inferred` (stage, level, auditID, requestURI,
 * stageTimestamp, responseStatus.code), fields it does not require are left out and named in
 * `kaudit.dev/unknown` (user.groups). Pure.
 */
export const INFERRED_ANNOTATION = 'kaudit.dev/inferred';
export const UNKNOWN_ANNOTATION = 'kaudit.dev/unknown';
export const SOURCE_ANNOTATION = 'kaudit.dev/source';
export const GKE_SOURCE = 'gke-cloud-audit-logs';

type Obj = Record<string, unknown>;
const isObj = (value: unknown): value is Obj =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;

export function isGkeLogEntry(value: unknown): boolean {
  return (
    isObj(value) && isObj(value.protoPayload) && (isObj(value.resource) || typeof value.logName === 'string')
  );
}

export function gkeClusterOf(entry: unknown): string | undefined {
  if (!isObj(entry) || !isObj(entry.resource) || !isObj(entry.resource.labels)) return undefined;
  return str(entry.resource.labels.cluster_name);
}

/** google.rpc.Code -> the HTTP status the API server answered (the mapping of google.rpc's code.proto). */
const RPC_TO_HTTP: Record<number, number> = {
  0: 200,
  1: 499,
  2: 500,
  3: 400,
  4: 504,
  5: 404,
  6: 409,
  7: 403,
  8: 429,
  9: 400,
  10: 409,
  11: 400,
  12: 501,
  13: 500,
  14: 503,
  15: 500,
  16: 401,
};

export interface ParsedResourceName {
  apiGroup: string;
  apiVersion: string;
  namespace?: string;
  resource?: string;
  name?: string;
  subresource?: string;
}

/** `core/v1/namespaces/default/secrets/db` -> its parts; undefined when it has no group and version. */
export function parseGkeResourceName(resourceName: string): ParsedResourceName | undefined {
  const parts = resourceName.split('/').filter((p) => p !== '');
  if (parts.length < 2) return undefined;
  const [group, version, ...rest] = parts as [string, string, ...string[]];
  const out: ParsedResourceName = { apiGroup: group === 'core' ? '' : group, apiVersion: version };
  let path = rest;
  if (path[0] === 'namespaces' && path.length >= 3) {
    out.namespace = path[1]!;
    path = path.slice(2);
  }
  if (path[0] !== undefined) out.resource = path[0];
  if (path[1] !== undefined) out.name = path[1];
  if (path[2] !== undefined) out.subresource = path[2];
  return out;
}

function requestUriOf(ref: ParsedResourceName): string {
  const base = ref.apiGroup === '' ? `/api/${ref.apiVersion}` : `/apis/${ref.apiGroup}/${ref.apiVersion}`;
  const parts = [
    base,
    ...(ref.namespace !== undefined ? ['namespaces', ref.namespace] : []),
    ...(ref.resource !== undefined ? [ref.resource] : []),
    ...(ref.name !== undefined ? [ref.name] : []),
    ...(ref.subresource !== undefined ? [ref.subresource] : []),
  ];
  return parts.join('/').replace(/\/+/g, '/');
}

export type GkeConversion =
  | { ok: true; event: Obj; cluster?: string }
  | { ok: false; reason: string; cluster?: string };

export function convertGkeLogEntry(entry: unknown): GkeConversion {
  const cluster = gkeClusterOf(entry);
  const where = cluster === undefined ? {} : { cluster };
  const fail = (reason: string): GkeConversion => ({
    ok: false,
    reason: `GKE LogEntry: ${reason}`,
    ...where,
  });
  if (!isObj(entry) || !isObj(entry.protoPayload)) return fail('has no protoPayload');
  const payload = entry.protoPayload;
  const methodName = str(payload.methodName);
  if (!methodName?.startsWith('io.k8s.'))
    return fail('protoPayload.methodName is not a Kubernetes method (io.k8s.*)');
  const verb = methodName.slice(methodName.lastIndexOf('.') + 1);
  const timestamp = str(entry.timestamp);
  if (!timestamp) return fail('timestamp is missing');
  const auditID = str(entry.insertId) ?? (isObj(entry.operation) ? str(entry.operation.id) : undefined);
  if (!auditID) return fail('insertId is missing');
  const auth = isObj(payload.authenticationInfo) ? payload.authenticationInfo : {};
  const username = str(auth.principalEmail);
  if (!username) return fail('protoPayload.authenticationInfo.principalEmail is missing');
  const meta = isObj(payload.requestMetadata) ? payload.requestMetadata : {};
  const resourceName = str(payload.resourceName);
  const ref = resourceName ? parseGkeResourceName(resourceName) : undefined;

  const inferred = ['stage', 'level', 'auditID', 'stageTimestamp'];
  const annotations: Record<string, string> = {};
  if (isObj(entry.labels))
    for (const [key, value] of Object.entries(entry.labels))
      if (typeof value === 'string') annotations[key] = value;

  const event: Obj = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    // The LogEntry names no level: the most its content shows.
    // (a response body is only logged at RequestResponse).
    level:
      payload.response !== undefined
        ? 'RequestResponse'
        : payload.request !== undefined
          ? 'Request'
          : 'Metadata',
    auditID,
    // Cloud Logging has one entry per request, written when it completed.
    stage: 'ResponseComplete',
    requestURI: ref ? requestUriOf(ref) : (resourceName ?? ''),
    verb,
    user: { username },
    requestReceivedTimestamp: timestamp,
    stageTimestamp: timestamp,
  };
  inferred.push('requestURI');
  const ip = str(meta.callerIp);
  if (ip) event.sourceIPs = [ip];
  const agent = str(meta.callerSuppliedUserAgent);
  if (agent) event.userAgent = agent;
  if (ref) {
    const objectRef: Obj = { apiGroup: ref.apiGroup, apiVersion: ref.apiVersion };
    for (const key of ['resource', 'namespace', 'name', 'subresource'] as const)
      if (ref[key] !== undefined) objectRef[key] = ref[key];
    event.objectRef = objectRef;
  }
  if (isObj(payload.status)) {
    const rpc = typeof payload.status.code === 'number' ? payload.status.code : 0;
    const status: Obj = { code: RPC_TO_HTTP[rpc] ?? 500 };
    const message = str(payload.status.message);
    if (message) status.message = message;
    status.status = rpc === 0 ? 'Success' : 'Failure';
    event.responseStatus = status;
    inferred.push('responseStatus.code');
  }
  if (payload.request !== undefined) event.requestObject = payload.request;
  if (payload.response !== undefined) event.responseObject = payload.response;
  annotations[SOURCE_ANNOTATION] = GKE_SOURCE;
  annotations[INFERRED_ANNOTATION] = inferred.join(',');
  annotations[UNKNOWN_ANNOTATION] = 'user.groups';
  event.annotations = annotations;
  return { ok: true, event, ...where };
}

/** convertGkeLogEntry as a decoded item (for readers). */
export function gkeLogEntryItem(entry: unknown, line: number): DecodedItem {
  const converted = convertGkeLogEntry(entry);
  const where = converted.cluster ? { cluster: converted.cluster } : {};
  return converted.ok
    ? { ok: true, raw: converted.event, line, ...where }
    : { ok: false, reason: converted.reason, line, ...where };
}

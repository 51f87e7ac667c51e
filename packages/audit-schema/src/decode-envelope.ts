import { z } from 'zod';
import { type AuditEvent, auditLevels, auditStages, formatInputIssues } from './audit-event';
import { CHAIN_STEP_COPY, EnvelopeSchema } from './envelope';
import { safeJsonError } from './json-error';

export type DecodedEnvelope =
  | { ok: true; envelope: { cluster: string; event: AuditEvent; copy?: typeof CHAIN_STEP_COPY } }
  | { ok: false; reason: string };

/**
 * One message of the events topic -> the envelope the engine takes, or why it is not one.
 *
 * The full zod schema costs more than the engine itself per event, so the hot path first runs a
 * hand-written check that is never more lenient than EnvelopeSchema: when it passes, the schema would
 * have accepted the same value (and returned it unchanged: the event is a loose object), so the parsed
 * JSON is used as it is. Anything it does not accept goes through the schema, which either accepts it
 * (the check is deliberately strict, e.g. on unusual number forms) or produces the dead-letter reason.
 */
export function decodeEnvelope(value: Buffer | null): DecodedEnvelope {
  if (value === null) return { ok: false, reason: 'empty message' };
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: `not valid JSON (${safeJsonError(error)})` };
  }
  if (isEnvelope(json))
    return {
      ok: true,
      envelope:
        json.copy === undefined
          ? { cluster: json.cluster, event: json.event }
          : { cluster: json.cluster, event: json.event, copy: json.copy },
    };
  const parsed = EnvelopeSchema.safeParse(json);
  return parsed.success
    ? { ok: true, envelope: parsed.data }
    : { ok: false, reason: formatInputIssues(parsed.error) };
}

// The schema's own pattern for z.iso.datetime({ offset: true }), so the two cannot disagree on a timestamp.
const DATETIME = z.regexes.datetime({ offset: true });
const LEVELS: ReadonlySet<unknown> = new Set(auditLevels);
const STAGES: ReadonlySet<unknown> = new Set(auditStages);

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const optionalString = (value: unknown) => value === undefined || typeof value === 'string';
const isTimestamp = (value: unknown) => typeof value === 'string' && DATETIME.test(value);

function isStringArray(value: unknown): boolean {
  if (!Array.isArray(value)) return false;
  for (const item of value) if (typeof item !== 'string') return false;
  return true;
}

function isUserInfo(value: unknown): boolean {
  if (!isObject(value)) return false;
  if (typeof value.username !== 'string' || !optionalString(value.uid)) return false;
  if (value.groups !== undefined && !isStringArray(value.groups)) return false;
  if (value.extra !== undefined) {
    if (!isObject(value.extra)) return false;
    for (const key in value.extra) if (!isStringArray(value.extra[key])) return false;
  }
  return true;
}

const OBJECT_REFERENCE_FIELDS = [
  'resource',
  'namespace',
  'name',
  'uid',
  'apiGroup',
  'apiVersion',
  'resourceVersion',
  'subresource',
] as const;

function isObjectReference(value: unknown): boolean {
  if (!isObject(value)) return false;
  for (const field of OBJECT_REFERENCE_FIELDS) if (!optionalString(value[field])) return false;
  return true;
}

function isResponseStatus(value: unknown): boolean {
  if (!isObject(value)) return false;
  if (value.code !== undefined && !Number.isSafeInteger(value.code)) return false;
  return optionalString(value.status) && optionalString(value.reason) && optionalString(value.message);
}

function isAuditEvent(event: unknown): event is AuditEvent {
  if (!isObject(event)) return false;
  if (event.kind !== undefined && event.kind !== 'Event') return false;
  if (event.apiVersion !== undefined && event.apiVersion !== 'audit.k8s.io/v1') return false;
  if (!LEVELS.has(event.level) || !STAGES.has(event.stage)) return false;
  if (typeof event.auditID !== 'string' || event.auditID.length === 0) return false;
  if (typeof event.verb !== 'string' || event.verb.length === 0) return false;
  if (typeof event.requestURI !== 'string' || !optionalString(event.userAgent)) return false;
  if (!isUserInfo(event.user)) return false;
  if (event.impersonatedUser !== undefined && !isUserInfo(event.impersonatedUser)) return false;
  if (event.sourceIPs !== undefined && !isStringArray(event.sourceIPs)) return false;
  if (event.objectRef !== undefined && !isObjectReference(event.objectRef)) return false;
  if (event.responseStatus !== undefined && !isResponseStatus(event.responseStatus)) return false;
  if (!isTimestamp(event.requestReceivedTimestamp) || !isTimestamp(event.stageTimestamp)) return false;
  if (event.annotations !== undefined) {
    if (!isObject(event.annotations)) return false;
    for (const key in event.annotations) if (typeof event.annotations[key] !== 'string') return false;
  }
  return true;
}

/** A value EnvelopeSchema accepts as it is (false: let the schema decide). */
export function isEnvelope(
  value: unknown,
): value is { cluster: string; event: AuditEvent; copy?: typeof CHAIN_STEP_COPY } {
  return (
    isObject(value) &&
    typeof value.cluster === 'string' &&
    value.cluster.length > 0 &&
    isTimestamp(value.receivedAt) &&
    (value.copy === undefined || value.copy === CHAIN_STEP_COPY) &&
    isAuditEvent(value.event)
  );
}

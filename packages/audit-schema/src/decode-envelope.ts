import { type AuditEvent, formatInputIssues, isAuditEvent, isObject, isTimestamp } from './audit-event';
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

/**
 * A value EnvelopeSchema accepts as it is (false: let the schema decide). Top-level keys the schema
 * would strip may still be on it: take the fields, not the object.
 */
export function isEnvelope(
  value: unknown,
): value is { cluster: string; receivedAt: string; event: AuditEvent; copy?: typeof CHAIN_STEP_COPY } {
  return (
    isObject(value) &&
    typeof value.cluster === 'string' &&
    value.cluster.length > 0 &&
    isTimestamp(value.receivedAt) &&
    (value.copy === undefined || value.copy === CHAIN_STEP_COPY) &&
    isAuditEvent(value.event)
  );
}

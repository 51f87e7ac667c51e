import { gunzipSync } from 'node:zlib';
import type { DecodedItem } from './decode';
import { safeJsonError } from './json-error';

/**
 * EKS control-plane logs in CloudWatch Logs (log group `/aws/eks/<cluster>/cluster`, streams
 * `kube-apiserver-audit-*`), in the shapes they leave AWS:
 * - a subscription filter's payload (to Firehose, Lambda, Kinesis): gzip of
 *   `{"messageType":"DATA_MESSAGE","owner","logGroup","logStream","subscriptionFilters":[…],
 *   "logEvents":[{"id","timestamp","message"}]}`; `CONTROL_MESSAGE` payloads only check the destination
 *   is reachable and carry no events;
 * - `aws logs filter-log-events` / `get-log-events` output: `{"events":[{"logStreamName","timestamp",
 *   "message","ingestionTime","eventId"}]}`;
 * - an export task's files: one `<ISO timestamp> <message>` per line.
 * Each `message` is one audit.k8s.io/v1 Event as JSON. CloudWatch Logs cuts an event over its 256 KB
 * limit and ends it with `[Truncated...]`: such a message is no JSON any more and can never become one,
 * so it is dead-lettered with that reason (its text withheld: it may hold a Secret). Pure (gunzip is
 * computation, no I/O).
 */
export const CLOUDWATCH_TRUNCATED_MARKER = '[Truncated...]';

export interface CloudWatchPayload {
  messageType: string;
  logGroup?: string;
  logStream?: string;
  logEvents: unknown[];
}

/** `/aws/eks/<cluster>/cluster` -> cluster. */
export function eksClusterFromLogGroup(logGroup: unknown): string | undefined {
  if (typeof logGroup !== 'string') return undefined;
  return /^\/aws\/eks\/([^/]+)\/cluster$/.exec(logGroup)?.[1];
}

export function isCloudWatchPayload(value: unknown): value is CloudWatchPayload {
  const doc = value as Partial<CloudWatchPayload> | null;
  return typeof doc === 'object' && doc !== null && typeof doc.messageType === 'string';
}

/** filter-log-events / get-log-events output. */
export function isCloudWatchEventsOutput(value: unknown): value is { events: unknown[] } {
  const doc = value as { events?: unknown } | null;
  return (
    typeof doc === 'object' &&
    doc !== null &&
    Array.isArray(doc.events) &&
    doc.events.every((e) => typeof (e as { message?: unknown } | null)?.message === 'string')
  );
}

/** A decoded subscription payload -> its events (none for CONTROL_MESSAGE). */
export function cloudWatchPayloadItems(payload: CloudWatchPayload, line: number): DecodedItem[] {
  if (payload.messageType === 'CONTROL_MESSAGE') return [];
  const cluster = eksClusterFromLogGroup(payload.logGroup);
  if (payload.messageType !== 'DATA_MESSAGE' || !Array.isArray(payload.logEvents))
    return [
      {
        ok: false,
        reason: 'CloudWatch Logs payload is neither DATA_MESSAGE with logEvents nor CONTROL_MESSAGE',
        line,
        ...(cluster ? { cluster } : {}),
      },
    ];
  return payload.logEvents.map((logEvent) =>
    cloudWatchMessageItem((logEvent as { message?: unknown } | null)?.message, line, cluster),
  );
}

/** One CloudWatch log event's `message` -> the audit event it holds. */
export function cloudWatchMessageItem(message: unknown, line: number, cluster?: string): DecodedItem {
  const where = cluster ? { cluster } : {};
  if (typeof message !== 'string')
    return { ok: false, reason: 'CloudWatch log event has no message string', line, ...where };
  if (message.trimEnd().endsWith(CLOUDWATCH_TRUNCATED_MARKER))
    return {
      ok: false,
      reason:
        'event truncated by CloudWatch Logs ([Truncated...], over its 256 KB event limit): it cannot be parsed (raw item withheld)',
      line,
      ...where,
    };
  try {
    return { ok: true, raw: JSON.parse(message), line, bytes: Buffer.byteLength(message), ...where };
  } catch (error) {
    return {
      ok: false,
      reason: `CloudWatch log event's message is not valid JSON (${safeJsonError(error)})`,
      line,
      ...where,
    };
  }
}

const GZIP_BASE64 = /^H4sI[A-Za-z0-9+/=\s]*$/;

/** A base64 text of gzip (`H4sI…`), as a subscription payload is stored raw: its JSON, or undefined. */
export function decodeGzipBase64(
  text: string,
): { ok: true; value: unknown } | { ok: false; reason: string } | undefined {
  const trimmed = text.trim();
  if (!GZIP_BASE64.test(trimmed)) return undefined;
  return decodeGzipJson(Buffer.from(trimmed, 'base64'));
}

/** gzip (or, if not gzip, plain) bytes of one JSON document. */
export function decodeGzipJson(bytes: Buffer): { ok: true; value: unknown } | { ok: false; reason: string } {
  let text: string;
  try {
    text = (isGzip(bytes) ? gunzipSync(bytes) : bytes).toString('utf8');
  } catch {
    return { ok: false, reason: 'gzip data is corrupt or cut short' };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reason: `not valid JSON (${safeJsonError(error)})` };
  }
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** An export task's line: `2026-12-01T10:00:00.000Z {"kind":"Event",…}` -> the message part. */
export function stripExportTimestamp(line: string): string | undefined {
  const match = /^\uFEFF?\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:?\d\d)\s+(\{.*)$/.exec(line.trim());
  return match?.[1];
}

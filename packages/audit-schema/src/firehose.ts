import {
  cloudWatchMessageItem,
  cloudWatchPayloadItems,
  decodeGzipJson,
  isCloudWatchPayload,
} from './cloudwatch';
import type { DecodedItem } from './decode';

/**
 * Amazon Data Firehose's HTTP endpoint delivery (protocol version 1.0): the request body is
 * `{"requestId":"<guid>","timestamp":<ms>,"records":[{"data":"<base64>"}]}` (gzip as a whole when the
 * stream's content encoding is GZIP), and the endpoint must answer `{"requestId","timestamp"}` with 200
 * when it has the records, or a non-200 status with `{"requestId","timestamp","errorMessage"}` to have
 * Firehose retry (it retries for the stream's retry duration, then backs the batch up to S3). A record
 * from a CloudWatch Logs subscription is one gzip'd subscription payload (cloudwatch.ts); with
 * Firehose's own CloudWatch decompression (and message extraction) switched on it is the JSON payload,
 * or the bare messages one per line. Pure.
 */
export interface FirehoseRequest {
  requestId: string;
  timestamp: number;
  records: Buffer[];
}

export type FirehoseParse =
  | { ok: true; request: FirehoseRequest }
  | { ok: false; reason: string; requestId?: string };

export function parseFirehoseRequest(body: unknown): FirehoseParse {
  const doc = body as { requestId?: unknown; timestamp?: unknown; records?: unknown } | null;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return { ok: false, reason: 'body must be a Firehose request object' };
  const requestId = typeof doc.requestId === 'string' && doc.requestId !== '' ? doc.requestId : undefined;
  if (!requestId) return { ok: false, reason: 'requestId must be a non-empty string' };
  if (typeof doc.timestamp !== 'number')
    return { ok: false, reason: 'timestamp must be a number', requestId };
  if (!Array.isArray(doc.records)) return { ok: false, reason: 'records must be an array', requestId };
  const records: Buffer[] = [];
  for (const [index, record] of doc.records.entries()) {
    const data = (record as { data?: unknown } | null)?.data;
    if (typeof data !== 'string')
      return { ok: false, reason: `records.${index}.data must be a base64 string`, requestId };
    records.push(Buffer.from(data, 'base64'));
  }
  return { ok: true, request: { requestId, timestamp: doc.timestamp, records } };
}

/** One Firehose record -> its audit events (none for a CONTROL_MESSAGE); `line` is the record's index + 1. */
export function firehoseRecordItems(data: Buffer, line: number): DecodedItem[] {
  const decoded = decodeGzipJson(data);
  if (decoded.ok && isCloudWatchPayload(decoded.value)) return cloudWatchPayloadItems(decoded.value, line);
  if (
    decoded.ok &&
    typeof decoded.value === 'object' &&
    decoded.value !== null &&
    !Array.isArray(decoded.value)
  )
    return [{ ok: true, raw: decoded.value, line }];
  // Message extraction on: the messages themselves, newline-delimited.
  const text = data.toString('utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length > 0 && lines.every((l) => l.trimStart().startsWith('{')))
    return lines.map((l) => cloudWatchMessageItem(l, line));
  return [
    {
      ok: false,
      reason: `record ${line - 1}: ${decoded.ok ? 'not a CloudWatch Logs payload' : decoded.reason}`,
      line,
    },
  ];
}

/** Firehose's required answer body; errorMessage only on a failure. */
export function firehoseResponse(
  requestId: string,
  timestamp: number,
  errorMessage?: string,
): Record<string, unknown> {
  return errorMessage === undefined ? { requestId, timestamp } : { requestId, timestamp, errorMessage };
}

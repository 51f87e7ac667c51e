/**
 * Turns the text of an audit log into raw items, whatever shape it came in: JSON lines as the API
 * server's log backend writes them, an EventList, a JSON array, a single (possibly pretty-printed)
 * event, Azure Event Hubs' `{"records":[{"properties":{"log":"<event JSON>"}}]}` (AKS, event-hubs.ts),
 * CloudWatch Logs subscription payloads decoded or raw (gzip + base64), `aws logs filter-log-events`
 * output and export-task lines (EKS, cloudwatch.ts), and GKE's Cloud Audit Logs LogEntries, one per
 * line or as the JSON array `gcloud logging read --format=json` prints (gke-log-entry.ts). Items carry
 * the cluster where the input names it (log group, resourceId, resource.labels.cluster_name). A leading
 * UTF-8 BOM is ignored. A line that is not JSON is reported with its number and the rest still decodes.
 * Pure: validation of each item is parseAuditEvent's job.
 */
export type DecodedItem =
  | {
      ok: true;
      raw: unknown;
      line: number;
      /** Bytes the item took in its input, where the reader knows it. */
      bytes?: number;
      /** Body fields a bounded reader replaced by null (too large to keep): they go, and are annotated. */
      truncated?: string[];
      /** The cluster the input names for this item, if it names one. */
      cluster?: string;
    }
  | { ok: false; reason: string; line: number; cluster?: string };

import {
  cloudWatchMessageItem,
  cloudWatchPayloadItems,
  decodeGzipBase64,
  eksClusterFromLogGroup,
  isCloudWatchEventsOutput,
  isCloudWatchPayload,
  stripExportTimestamp,
} from './cloudwatch';
import { isEventHubRecord, unwrapEventHubRecord } from './event-hubs';
import { gkeLogEntryItem, isGkeLogEntry } from './gke-log-entry';
import { safeJsonError } from './json-error';

const BOM = '\uFEFF';

export function decodeAuditText(text: string): DecodedItem[] {
  const body = text.startsWith(BOM) ? text.slice(1) : text;
  const trimmed = body.trim();
  if (trimmed === '') return [];
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const whole = tryParse(trimmed);
    if (whole.ok) return unwrapDocument(whole.value, 1);
  }
  return decodeJsonLines(body);
}

/** JSON lines only (for `application/x-ndjson` and streaming readers); blank lines are skipped. */
export function decodeJsonLines(text: string, firstLine = 1): DecodedItem[] {
  const out: DecodedItem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    out.push(...decodeLine(lines[i] ?? '', firstLine + i));
  }
  return out;
}

/**
 * One line of a JSON-lines file; a line holding an EventList, an Event Hubs batch or a CloudWatch
 * payload is unwrapped, a raw (gzip + base64) subscription payload decoded, an export-task line's
 * timestamp prefix dropped.
 */
export function decodeLine(line: string, lineNumber: number): DecodedItem[] {
  const text = (lineNumber === 1 && line.startsWith(BOM) ? line.slice(1) : line).trim();
  if (text === '') return [];
  const gzipped = decodeGzipBase64(text);
  if (gzipped)
    return gzipped.ok
      ? unwrapDocument(gzipped.value, lineNumber)
      : [
          {
            ok: false,
            reason: `line ${lineNumber}: gzip+base64 payload: ${gzipped.reason}`,
            line: lineNumber,
          },
        ];
  const exported = stripExportTimestamp(text);
  if (exported !== undefined) return [cloudWatchMessageItem(exported, lineNumber)];
  const parsed = tryParse(text);
  if (!parsed.ok)
    return [{ ok: false, reason: `line ${lineNumber}: not valid JSON (${parsed.reason})`, line: lineNumber }];
  return unwrapDocument(parsed.value, lineNumber);
}

function unwrapDocument(value: unknown, line: number): DecodedItem[] {
  if (Array.isArray(value)) return value.map((raw) => unwrapItem(raw, line));
  if (typeof value === 'object' && value !== null) {
    const doc = value as Record<string, unknown>;
    if (doc.kind === 'EventList') {
      if (!Array.isArray(doc.items)) return [{ ok: false, reason: 'EventList.items must be an array', line }];
      return doc.items.map((raw) => ({ ok: true, raw, line }));
    }
    if (Array.isArray(doc.records)) return doc.records.map((record) => eventHubItem(record, line));
    // One record per line, as a storage account or an Event Hubs capture holds them.
    if (isEventHubRecord(value)) return [eventHubItem(value, line)];
    if (isCloudWatchPayload(value)) return cloudWatchPayloadItems(value, line);
    if (isCloudWatchEventsOutput(value)) {
      const cluster = eksClusterFromLogGroup(doc.logGroupName);
      return value.events.map((e) =>
        cloudWatchMessageItem((e as { message: string }).message, line, cluster),
      );
    }
  }
  return [unwrapItem(value, line)];
}

/** One element: a GKE LogEntry is converted, anything else is taken as it is. */
function unwrapItem(raw: unknown, line: number): DecodedItem {
  return isGkeLogEntry(raw) ? gkeLogEntryItem(raw, line) : { ok: true, raw, line };
}

function eventHubItem(record: unknown, line: number): DecodedItem {
  const unwrapped = unwrapEventHubRecord(record);
  const where = unwrapped.cluster === undefined ? {} : { cluster: unwrapped.cluster };
  return unwrapped.ok
    ? { ok: true, raw: unwrapped.raw, line, ...where }
    : { ok: false, reason: `line ${line}: ${unwrapped.reason}`, line, ...where };
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reason: safeJsonError(error) };
  }
}

/**
 * Turns the text of an audit log into raw items, whatever shape it came in: JSON lines as the API
 * server's log backend writes them, an EventList, a JSON array, a single (possibly pretty-printed)
 * event, or Azure Event Hubs' `{"records":[{"properties":{"log":"<event JSON>"}}]}`. A leading UTF-8
 * BOM is ignored. A line that is not JSON is reported with its number and the rest still decodes.
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
    }
  | { ok: false; reason: string; line: number };

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

/** One line of a JSON-lines file; a line holding an EventList or an Event Hubs batch is unwrapped. */
export function decodeLine(line: string, lineNumber: number): DecodedItem[] {
  const text = (lineNumber === 1 && line.startsWith(BOM) ? line.slice(1) : line).trim();
  if (text === '') return [];
  const parsed = tryParse(text);
  if (!parsed.ok)
    return [{ ok: false, reason: `line ${lineNumber}: not valid JSON (${parsed.reason})`, line: lineNumber }];
  return unwrapDocument(parsed.value, lineNumber);
}

function unwrapDocument(value: unknown, line: number): DecodedItem[] {
  if (Array.isArray(value)) return value.map((raw) => ({ ok: true, raw, line }));
  if (typeof value === 'object' && value !== null) {
    const doc = value as Record<string, unknown>;
    if (doc.kind === 'EventList') {
      if (!Array.isArray(doc.items)) return [{ ok: false, reason: 'EventList.items must be an array', line }];
      return doc.items.map((raw) => ({ ok: true, raw, line }));
    }
    if (Array.isArray(doc.records)) return doc.records.map((record) => unwrapEventHubRecord(record, line));
  }
  return [{ ok: true, raw: value, line }];
}

function unwrapEventHubRecord(record: unknown, line: number): DecodedItem {
  const log = (record as { properties?: { log?: unknown } } | null)?.properties?.log;
  if (typeof log !== 'string') return { ok: true, raw: record, line };
  const parsed = tryParse(log);
  return parsed.ok
    ? { ok: true, raw: parsed.value, line }
    : {
        ok: false,
        reason: `line ${line}: Event Hubs record's properties.log is not valid JSON (${parsed.reason})`,
        line,
      };
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reason: safeJsonError(error) };
  }
}

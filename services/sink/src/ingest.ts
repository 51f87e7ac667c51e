import {
  type AuditEvent,
  type DeadLetter,
  type DecodedItem,
  type Envelope,
  parseAuditEvent,
  partitionKey,
  TRUNCATED_ANNOTATION,
} from '@kaudit/audit-schema';
import type { Redactor } from '@kaudit/redaction';
import type { OutMessage } from './spool-format';

/** Below the broker's default message.max.bytes (1048588) even before compression. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_000_000;
const MAX_ERRORS = 1000;

export type BodyFormat = 'json' | 'ndjson';
export type BodyDecode = { ok: true; items: DecodedItem[] } | { ok: false; reason: string };

/**
 * The body as items. JSON: an EventList, a single Event, or an array of events. JSON lines: one
 * Event (or EventList) per line; a bad line is one rejected item, the others go on. Error texts never
 * quote the input (JSON.parse does: it could be a secret).
 */
export function decodeBody(body: Buffer, format: BodyFormat): BodyDecode {
  let text = body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') return { ok: false, reason: 'body is empty' };
  if (format === 'ndjson') return { ok: true, items: decodeLines(text) };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `body is not valid JSON: ${safeJsonError(error)}` };
  }
  if (Array.isArray(value)) return { ok: true, items: value.map((raw) => ({ ok: true, raw, line: 1 })) };
  if (typeof value !== 'object' || value === null)
    return { ok: false, reason: 'body must be an audit.k8s.io/v1 EventList or Event object' };
  const doc = value as Record<string, unknown>;
  if (doc.kind === 'EventList') {
    if (!Array.isArray(doc.items)) return { ok: false, reason: 'EventList.items must be an array' };
    return { ok: true, items: doc.items.map((raw) => ({ ok: true, raw, line: 1 })) };
  }
  return { ok: true, items: [{ ok: true, raw: value, line: 1 }] };
}

function decodeLines(text: string): DecodedItem[] {
  const items: DecodedItem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    try {
      const value = JSON.parse(line) as unknown;
      const list =
        (value as { kind?: unknown; items?: unknown } | null)?.kind === 'EventList'
          ? (value as { items: unknown }).items
          : undefined;
      if (Array.isArray(list)) items.push(...list.map((raw) => ({ ok: true as const, raw, line: i + 1 })));
      else items.push({ ok: true, raw: value, line: i + 1 });
    } catch (error) {
      items.push({
        ok: false,
        reason: `line ${i + 1}: not valid JSON (${safeJsonError(error)})`,
        line: i + 1,
      });
    }
  }
  return items;
}

/** JSON.parse's message without the excerpt of the input it quotes. */
export function safeJsonError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const quoted = message.indexOf(', "');
  if (quoted >= 0 && message.endsWith('is not valid JSON')) return message.slice(0, quoted);
  return message.length > 200 ? `${message.slice(0, 200)}…` : message;
}

export interface IngestOptions {
  redactor: Redactor;
  eventsTopic: string;
  dlqTopic: string;
  maxMessageBytes?: number;
}

export interface IngestResult {
  /** Envelopes for the events topic and dead letters for the DLQ, in request order. */
  messages: OutMessage[];
  accepted: number;
  rejected: number;
  redacted: number;
  truncated: number;
  errors: { index: number; reason: string }[];
}

/** Validates, redacts and serializes every item; never throws on input. Pure. */
export function ingestItems(
  items: readonly DecodedItem[],
  cluster: string,
  receivedAt: string,
  options: IngestOptions,
): IngestResult {
  const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const result: IngestResult = {
    messages: [],
    accepted: 0,
    rejected: 0,
    redacted: 0,
    truncated: 0,
    errors: [],
  };

  const reject = (index: number, reason: string, raw: unknown) => {
    result.rejected += 1;
    if (result.errors.length < MAX_ERRORS) result.errors.push({ index, reason });
    const letter: DeadLetter = { source: 'sink', reason, at: receivedAt, cluster, raw };
    let value = JSON.stringify(letter);
    if (tooLarge(value, maxBytes))
      value = JSON.stringify({ ...letter, raw: `[${value.length} characters withheld: too large]` });
    result.messages.push({ topic: options.dlqTopic, key: cluster, value });
  };

  for (const [index, item] of items.entries()) {
    if (!item.ok) {
      // The text of a line that is not JSON cannot be inspected for secrets: only its number goes on.
      reject(index, item.reason, null);
      continue;
    }
    const parsed = parseAuditEvent(item.raw);
    if (!parsed.ok) {
      reject(index, parsed.reason, options.redactor.redactRaw(item.raw).raw);
      continue;
    }
    const { event, redactedPaths } = options.redactor(parsed.event);
    if (redactedPaths.length > 0) result.redacted += 1;
    let value = serialize(cluster, receivedAt, event);
    if (tooLarge(value, maxBytes)) {
      const dropped = (['requestObject', 'responseObject'] as const).filter((f) => event[f] !== undefined);
      const { requestObject: _request, responseObject: _response, ...rest } = event;
      value = serialize(cluster, receivedAt, {
        ...rest,
        annotations: { ...event.annotations, [TRUNCATED_ANNOTATION]: dropped.join(',') },
      });
      if (tooLarge(value, maxBytes)) {
        reject(
          index,
          `event is larger than ${maxBytes} bytes even without its request/response bodies`,
          null,
        );
        continue;
      }
      result.truncated += 1;
    }
    result.accepted += 1;
    result.messages.push({ topic: options.eventsTopic, key: partitionKey(cluster, event), value });
  }
  return result;
}

function serialize(cluster: string, receivedAt: string, event: AuditEvent): string {
  const envelope: Envelope = { cluster, receivedAt, event };
  return JSON.stringify(envelope);
}

function tooLarge(value: string, maxBytes: number): boolean {
  // A UTF-16 length under a third of the limit cannot reach it in UTF-8: skip the byte count.
  return value.length * 3 > maxBytes && Buffer.byteLength(value, 'utf8') > maxBytes;
}

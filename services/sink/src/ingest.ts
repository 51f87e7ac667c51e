import {
  type AuditEvent,
  type DeadLetter,
  type DecodedItem,
  type Envelope,
  parseAuditEvent,
  partitionKey,
  TRUNCATED_ANNOTATION,
} from '@kaudit/audit-schema';
import type { RawRedactionResult, Redactor } from '@kaudit/redaction';
import type { OutMessage } from './spool-format';

/** Below the broker's default message.max.bytes (1048588) even before compression. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_000_000;
const MAX_ERRORS = 1000;
/**
 * Items nested deeper than this (objects and arrays) are dead-lettered whole, before anything recursive
 * (validation, redaction, JSON.stringify, the consumers) walks them: about 20,000 levels, 100 KB of
 * `{"a":`, overflow V8's stack. Real audit events stay far below: the redactor already drops request
 * and response bodies past 100 levels, and the rest of an event is a few levels deep.
 */
export const MAX_ITEM_DEPTH = 256;

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
    const letter: DeadLetter = { source: 'sink', reason, at: receivedAt, cluster, raw };
    let value: string;
    try {
      value = JSON.stringify(letter);
      if (tooLarge(value, maxBytes))
        value = JSON.stringify({ ...letter, raw: `[${value.length} characters withheld: too large]` });
    } catch (error) {
      letter.reason = `${reason}; the raw item could not be serialized (${errorName(error)})`;
      letter.raw = null;
      value = JSON.stringify(letter);
    }
    result.rejected += 1;
    if (result.errors.length < MAX_ERRORS) result.errors.push({ index, reason: letter.reason });
    result.messages.push({ topic: options.dlqTopic, key: cluster, value });
  };

  /** An invalid item goes to the dead-letter topic redacted, or without its content when it cannot be. */
  const rejectInvalid = (index: number, reason: string, raw: unknown) => {
    let redacted: RawRedactionResult;
    try {
      redacted = options.redactor.redactRaw(raw);
    } catch (error) {
      return reject(index, `${reason}; the raw item could not be redacted (${errorName(error)})`, null);
    }
    reject(index, redacted.note === undefined ? reason : `${reason}; ${redacted.note}`, redacted.raw);
  };

  const ingestOne = (index: number, raw: unknown) => {
    if (nestedDeeperThan(raw, MAX_ITEM_DEPTH))
      return reject(index, `item is nested deeper than ${MAX_ITEM_DEPTH} levels (raw item withheld)`, null);
    const parsed = parseAuditEvent(raw);
    if (!parsed.ok) return rejectInvalid(index, parsed.reason, raw);
    const { event, redactedPaths } = options.redactor(parsed.event);
    let value = serialize(cluster, receivedAt, event);
    let truncated = false;
    if (tooLarge(value, maxBytes)) {
      const dropped = (['requestObject', 'responseObject'] as const).filter((f) => event[f] !== undefined);
      const { requestObject: _request, responseObject: _response, ...rest } = event;
      value = serialize(cluster, receivedAt, {
        ...rest,
        annotations: { ...event.annotations, [TRUNCATED_ANNOTATION]: dropped.join(',') },
      });
      if (tooLarge(value, maxBytes))
        return reject(
          index,
          `event is larger than ${maxBytes} bytes even without its request/response bodies`,
          null,
        );
      truncated = true;
    }
    // Counted only here, once nothing can throw any more: a failing item is one rejection, nothing else.
    if (redactedPaths.length > 0) result.redacted += 1;
    if (truncated) result.truncated += 1;
    result.accepted += 1;
    result.messages.push({ topic: options.eventsTopic, key: partitionKey(cluster, event), value });
  };

  for (const [index, item] of items.entries()) {
    if (!item.ok) {
      // The text of a line that is not JSON cannot be inspected for secrets: only its number goes on.
      reject(index, item.reason, null);
      continue;
    }
    // One item must never fail the batch: the API server would retry, then drop, every event in it.
    try {
      ingestOne(index, item.raw);
    } catch (error) {
      reject(index, `item could not be processed (${errorName(error)}; raw item withheld)`, null);
    }
  }
  return result;
}

/** Bounded recursion: never goes deeper than `limit`, so it cannot overflow the stack itself. */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (limit === 0) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (nestedDeeperThan(item, limit - 1)) return true;
    return false;
  }
  for (const key in value)
    if (nestedDeeperThan((value as Record<string, unknown>)[key], limit - 1)) return true;
  return false;
}

/** The error's class only: messages of arbitrary errors may quote the input. */
function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

function serialize(cluster: string, receivedAt: string, event: AuditEvent): string {
  const envelope: Envelope = { cluster, receivedAt, event };
  return JSON.stringify(envelope);
}

function tooLarge(value: string, maxBytes: number): boolean {
  // A UTF-16 length under a third of the limit cannot reach it in UTF-8: skip the byte count.
  return value.length * 3 > maxBytes && Buffer.byteLength(value, 'utf8') > maxBytes;
}

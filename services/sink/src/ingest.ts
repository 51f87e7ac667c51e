import {
  type AuditEvent,
  CHAIN_STEP_COPY,
  chainCopies,
  type DecodedItem,
  type Envelope,
  parseAuditEvent,
  partitionKey,
  TRUNCATED_ANNOTATION,
} from '@kaudit/audit-schema';
import type { RawRedactionResult, Redactor } from '@kaudit/redaction';
import { buildDeadLetter, serializeDeadLetter } from '@kaudit/service-kit';
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
  const batch = createBatch(cluster, receivedAt, options);
  for (const item of items) batch.add(item);
  return batch.result;
}

export interface Batch {
  /** One item, in request order; never throws on input. */
  add(item: DecodedItem): void;
  readonly result: IngestResult;
}

/** ingestItems one item at a time, as a streaming reader hands them on. Pure. */
export function createBatch(cluster: string, receivedAt: string, options: IngestOptions): Batch {
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
    const letter = buildDeadLetter({ source: 'sink', reason, at: receivedAt, cluster, raw });
    const value = serializeDeadLetter(letter, maxBytes);
    result.rejected += 1;
    if (result.errors.length < MAX_ERRORS) result.errors.push({ index, reason });
    result.messages.push({ topic: options.dlqTopic, key: cluster, value });
  };

  /** An invalid item goes to the dead-letter topic redacted, or without its content when it cannot be. */
  const rejectInvalid = (index: number, reason: string, raw: unknown, bytes: number | undefined) => {
    let redacted: RawRedactionResult;
    try {
      redacted = options.redactor.redactRaw(raw);
    } catch (error) {
      return reject(index, `${reason}; the raw item could not be redacted (${errorName(error)})`, null);
    }
    const note =
      redacted.note === undefined
        ? ''
        : `; ${redacted.note}${redacted.raw === null && bytes !== undefined ? ` (${bytes} bytes)` : ''}`;
    reject(index, `${reason}${note}`, redacted.raw);
  };

  const ingestOne = (index: number, item: unknown, readerDropped: readonly string[], bytes?: number) => {
    if (nestedDeeperThan(item, MAX_ITEM_DEPTH))
      return reject(index, `item is nested deeper than ${MAX_ITEM_DEPTH} levels (raw item withheld)`, null);
    let raw = item;
    if (readerDropped.length > 0 && typeof raw === 'object' && raw !== null) {
      // Bodies the reader could not keep (the item was too large) stand as null: they go.
      const copy = { ...(raw as Record<string, unknown>) };
      for (const field of readerDropped) delete copy[field];
      raw = copy;
    }
    const parsed = parseAuditEvent(raw);
    if (!parsed.ok) return rejectInvalid(index, parsed.reason, raw, bytes);
    const redacted = options.redactor(parsed.event);
    const { redactedPaths } = redacted;
    let event = redacted.event;
    if (readerDropped.length > 0)
      event = {
        ...event,
        annotations: { ...event.annotations, [TRUNCATED_ANNOTATION]: readerDropped.join(',') },
      };
    let value = serialize(cluster, receivedAt, event);
    let truncated = readerDropped.length > 0;
    if (tooLarge(value, maxBytes)) {
      const dropped = [
        ...readerDropped,
        ...(['requestObject', 'responseObject'] as const).filter((f) => event[f] !== undefined),
      ];
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
    // A chain step's copies follow it (chain-copies.ts), in the same request: durable with it.
    const copies = chainCopies(cluster, event);
    if (copies.keys.length > 0 || copies.everyPartition) {
      const copy = `${value.slice(0, -1)},"copy":"${CHAIN_STEP_COPY}"}`;
      for (const key of copies.keys) result.messages.push({ topic: options.eventsTopic, key, value: copy });
      if (copies.everyPartition)
        result.messages.push({ topic: options.eventsTopic, key: null, value: copy, everyPartition: true });
    }
  };

  let index = 0;
  return {
    result,
    add(item) {
      const at = index++;
      if (!item.ok) {
        // The text of a line that is not JSON cannot be inspected for secrets: only its number goes on.
        reject(at, item.reason, null);
        return;
      }
      // One item must never fail the batch: the API server would retry, then drop, every event in it.
      try {
        ingestOne(at, item.raw, item.truncated ?? [], item.bytes);
      } catch (error) {
        reject(at, `item could not be processed (${errorName(error)}; raw item withheld)`, null);
      }
    },
  };
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

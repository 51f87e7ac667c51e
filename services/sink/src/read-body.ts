import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import {
  type DecodedItem,
  ItemSplitter,
  SplitError,
  type SplitItem,
  safeJsonError,
  unwrapEventHubRecord,
} from '@kaudit/audit-schema';
import { AppError } from '@kaudit/service-kit';

/**
 * Reads a request body as a stream of items, never as one document: the bytes go through the
 * Content-Encoding's decompressor into the item splitter (@kaudit/audit-schema), and each item is handed
 * on as soon as it is complete. Memory follows the largest item (bounded by maxItemBytes, past which its
 * bodies are dropped), so any batch an API server sends is read whatever its size; `maxBodyBytes` bounds
 * only the decompressed total (a gzip bomb, a body no API server produces).
 */
export type BodyFormat = 'json' | 'ndjson';

export interface ReadBodyOptions {
  format: BodyFormat;
  maxBodyBytes: number;
  maxItemBytes: number;
  onItem: (item: DecodedItem) => void;
}

/** Resolves once the body has been read and every item handed on; rejects with an AppError (4xx). */
export function readBody(req: IncomingMessage, options: ReadBodyOptions): Promise<void> {
  const decoder = createBodyDecoder(options.format, options.maxItemBytes, options.onItem);
  return consumeBody(req, options.maxBodyBytes, {
    chunk: (chunk) => decoder.push(chunk),
    end: () => decoder.end(),
  });
}

/**
 * The whole decompressed body in memory, up to maxBodyBytes: for the cloud sources (Firehose, Pub/Sub),
 * whose requests are one JSON document of bounded size (Firehose buffers at most 64 MiB, a Pub/Sub
 * message at most 10 MB) that must be parsed whole. Rejects with an AppError (4xx).
 */
export async function readWholeBody(req: IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await consumeBody(req, maxBodyBytes, { chunk: (chunk) => chunks.push(chunk), end: () => undefined });
  return Buffer.concat(chunks);
}

/**
 * The one reading loop: the body through its Content-Encoding, bounded by maxBodyBytes decompressed,
 * each chunk handed on; a handler that throws (a SplitError: no batch) is a 400. On a refusal reading
 * stops at once, and the error answer closes the connection (node drains at most a little of the rest).
 */
function consumeBody(
  req: IncomingMessage,
  maxBodyBytes: number,
  handle: { chunk: (chunk: Buffer) => void; end: () => void },
): Promise<void> {
  const opened = openDecoded(req, maxBodyBytes);
  if (opened instanceof AppError) return Promise.reject(opened);
  const source = opened;
  return new Promise<void>((resolve, reject) => {
    let total = 0;
    let settled = false;
    const fail = (error: AppError) => {
      if (settled) return;
      settled = true;
      if (source !== req) source.destroy();
      req.unpipe();
      reject(error);
    };
    source.on('data', (chunk: Buffer) => {
      if (settled) return;
      total += chunk.length;
      if (total > maxBodyBytes) return fail(tooLarge(maxBodyBytes));
      try {
        handle.chunk(chunk);
      } catch (error) {
        fail(badRequest(error));
      }
    });
    source.on('end', () => {
      if (settled) return;
      try {
        handle.end();
        settled = true;
        resolve();
      } catch (error) {
        fail(badRequest(error));
      }
    });
    source.on('error', () =>
      fail(
        new AppError('KAUDIT_ERR_BAD_REQUEST', 'body could not be read (bad encoding or framing)', {
          statusCode: 400,
        }),
      ),
    );
    req.on('aborted', () =>
      fail(new AppError('KAUDIT_ERR_BAD_REQUEST', 'request aborted by the client', { statusCode: 400 })),
    );
  });
}

/** The body after its Content-Encoding, or the refusal (declared too large, unknown encoding). */
function openDecoded(req: IncomingMessage, maxBodyBytes: number): Readable | AppError {
  const declared = Number(req.headers['content-length']);
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (Number.isFinite(declared) && declared > maxBodyBytes && encoding === 'identity')
    return tooLarge(maxBodyBytes);
  if (encoding === 'gzip' || encoding === 'x-gzip') return req.pipe(createGunzip());
  if (encoding === 'deflate') return req.pipe(createInflate());
  if (encoding === 'identity') return req;
  return new AppError(
    'KAUDIT_ERR_UNSUPPORTED_MEDIA_TYPE',
    'Content-Encoding must be identity, gzip or deflate',
    {
      statusCode: 415,
    },
  );
}

export interface BodyDecoder {
  push(chunk: Buffer): void;
  /** Throws SplitError when the body is no batch at all. */
  end(): void;
}

/**
 * Splitter items -> decoded items: each text parsed on its own, Azure Event Hubs records unwrapped
 * (`properties.log` holds the event as a string), dropped bodies named. Error texts name positions,
 * never the input. A JSON body that is a single value must be an object (an Event, or an EventList whose
 * `items` is an array); anything else is no batch.
 */
export function createBodyDecoder(
  format: BodyFormat,
  maxItemBytes: number,
  onItem: (item: DecodedItem) => void,
): BodyDecoder {
  let single: SplitItem | undefined;
  const splitter = new ItemSplitter({
    format,
    maxItemBytes,
    onItem: (item) => {
      if (format === 'json' && item.container === 'value') single = item;
      else onItem(decodeItem(item, format, maxItemBytes));
    },
  });
  return {
    push: (chunk) => splitter.push(chunk),
    end: () => {
      splitter.end();
      if (!single) return;
      const decoded = decodeItem(single, format, maxItemBytes);
      if (!decoded.ok) throw new SplitError(`body is ${decoded.reason}`);
      {
        const raw = decoded.raw as { kind?: unknown } | null;
        if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
          throw new SplitError('body must be an audit.k8s.io/v1 EventList or Event object');
        if (raw.kind === 'EventList') throw new SplitError('EventList.items must be an array');
      }
      onItem(decoded);
    },
  };
}

function decodeItem(item: SplitItem, format: BodyFormat, maxItemBytes: number): DecodedItem {
  const where = format === 'ndjson' ? `line ${item.line}: ` : '';
  if (item.broken)
    return {
      ok: false,
      reason: `${where}not valid JSON (the line ends inside a string or a bracket)`,
      line: item.line,
    };
  if (item.text === undefined)
    return {
      ok: false,
      reason: `${where}item of ${item.bytes} bytes is larger than ${maxItemBytes} bytes even without its request/response bodies (raw item withheld)`,
      line: item.line,
    };
  let raw: unknown;
  try {
    raw = JSON.parse(item.text.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: `${where}not valid JSON (${safeJsonError(error)})`, line: item.line };
  }
  if (item.container === 'records') {
    const unwrapped = unwrapEventHubRecord(raw);
    if (!unwrapped.ok) return { ok: false, reason: `${where}${unwrapped.reason}`, line: item.line };
    raw = unwrapped.raw;
  }
  return {
    ok: true,
    raw,
    line: item.line,
    bytes: item.bytes,
    ...(item.dropped.length > 0 ? { truncated: item.dropped } : {}),
  };
}

function tooLarge(limit: number): AppError {
  return new AppError(
    'KAUDIT_ERR_PAYLOAD_TOO_LARGE',
    `body is larger than ${limit} bytes (SINK_MAX_BODY_BYTES)`,
    {
      statusCode: 413,
    },
  );
}

function badRequest(error: unknown): AppError {
  const message = error instanceof SplitError ? error.message : 'body could not be read';
  return new AppError('KAUDIT_ERR_BAD_REQUEST', message, { statusCode: 400 });
}

export type BodyDecode = { ok: true; items: DecodedItem[] } | { ok: false; reason: string };

/** A whole body already in memory (tests, the benchmark) through the same decoder. */
export function decodeBody(
  body: Buffer,
  format: BodyFormat,
  maxItemBytes = DEFAULT_MAX_ITEM_BYTES,
): BodyDecode {
  const items: DecodedItem[] = [];
  const decoder = createBodyDecoder(format, maxItemBytes, (item) => items.push(item));
  try {
    decoder.push(body);
    decoder.end();
  } catch (error) {
    return { ok: false, reason: error instanceof SplitError ? error.message : 'body could not be read' };
  }
  return items.length === 0 ? { ok: false, reason: 'body is empty' } : { ok: true, items };
}

/**
 * An item's text is kept up to this before its bodies are dropped (SINK_MAX_EVENT_BYTES). Above the
 * 1,000,000-byte message bound, so an event between the two is parsed, redacted, then truncated to fit.
 */
export const DEFAULT_MAX_ITEM_BYTES = 8 * 1024 * 1024;

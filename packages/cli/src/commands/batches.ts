import { sleep as commonSleep } from '@kaudit/common';
import { type ReadAuditFilesOptions, readAuditFiles } from '../read-audit-files';
import {
  API_SERVER_RETRY,
  backoffDelayMs,
  createWebhookClient,
  type RetryBudget,
  SendError,
  type WebhookClient,
  type WebhookOptions,
} from './webhook-client';

/**
 * Batching for `kaudit send`: EventList batches of at most 400 events and 10 MiB, `concurrency` in
 * flight, each retried within the API server's budget (webhook-client.ts posts and classifies).
 */

export const MAX_BATCH_EVENTS = 400;
/** kube-apiserver's --audit-webhook-truncate-max-batch-size default: a batch never grows past it. */
export const MAX_BATCH_BYTES = 10 * 1024 * 1024;

export interface SendProgress {
  batches: number;
  events: number;
  /** JSON bytes of the events delivered. */
  bytes: number;
}

export interface SendItemsOptions extends WebhookOptions {
  batchSize?: number;
  maxBatchBytes?: number;
  retry?: Partial<RetryBudget>;
  signal?: AbortSignal;
  onRetry?(info: { attempt: number; delayMs: number; error: SendError; events: number }): void;
  /** After each delivered batch. */
  onProgress?(progress: SendProgress): void;
  /** Waits between retries; tests inject a fake. */
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
  /** Posts the batches; defaults to an HTTP(S) client for `url` (tests inject a fake). */
  client?: WebhookClient;
}

export interface SendSummary {
  batches: number;
  /** Events posted in batches the receiver answered 2xx. */
  sent: number;
  accepted: number;
  rejected: number;
  /** Attempts that failed and were retried. */
  retries: number;
}

export class DeliveryFailedError extends Error {
  constructor(
    message: string,
    readonly summary: SendSummary,
    override readonly cause: SendError,
  ) {
    super(message);
    this.name = 'DeliveryFailedError';
  }
}

/**
 * Sends raw audit events (anything JSON; the receiver validates) in EventList batches, `concurrency`
 * batches in flight at once. Resolves with what the receiver said; rejects with DeliveryFailedError as
 * soon as one batch fails for good (its budget spent, or an answer a retry cannot change).
 */
export async function sendItems(
  items: AsyncIterable<unknown> | Iterable<unknown>,
  options: SendItemsOptions,
): Promise<SendSummary> {
  const batchSize = options.batchSize ?? MAX_BATCH_EVENTS;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_EVENTS) {
    throw new SendError(`batch size must be 1-${MAX_BATCH_EVENTS} (the API server's maximum)`, false);
  }
  const maxBatchBytes = options.maxBatchBytes ?? MAX_BATCH_BYTES;
  const budget: RetryBudget = { ...API_SERVER_RETRY, ...options.retry };
  const sleep = options.sleep ?? commonSleep;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const client = options.client ?? createWebhookClient({ ...options, concurrency });
  const summary: SendSummary = { batches: 0, sent: 0, accepted: 0, rejected: 0, retries: 0 };
  const progress: SendProgress = { batches: 0, events: 0, bytes: 0 };
  const inFlight = new Set<Promise<void>>();
  let failure: DeliveryFailedError | undefined;

  const deliver = async (serialized: string[], bytes: number) => {
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await client.post(serialized);
        summary.batches += 1;
        summary.sent += serialized.length;
        summary.accepted += reply.accepted;
        summary.rejected += reply.rejected;
        progress.batches += 1;
        progress.events += serialized.length;
        progress.bytes += bytes;
        options.onProgress?.({ ...progress });
        return;
      } catch (error) {
        const sendError = error instanceof SendError ? error : new SendError(String(error), true);
        const tooLong =
          sendError.retryAfterMs !== undefined && sendError.retryAfterMs > budget.maxRetryAfterMs;
        if (
          !sendError.retriable ||
          attempt >= budget.attempts ||
          tooLong ||
          options.signal?.aborted ||
          failure
        ) {
          const why = !sendError.retriable
            ? 'a retry cannot change this answer'
            : tooLong
              ? `Retry-After ${Math.round(sendError.retryAfterMs! / 1000)} s exceeds the ${Math.round(budget.maxRetryAfterMs / 1000)} s limit`
              : `gave up after ${attempt} attempt${attempt === 1 ? '' : 's'}`;
          failure ??= new DeliveryFailedError(
            `a batch of ${serialized.length} events was not delivered (${why}): ${sendError.message}`,
            summary,
            sendError,
          );
          return;
        }
        const delayMs = backoffDelayMs(budget, attempt, sendError.retryAfterMs);
        summary.retries += 1;
        options.onRetry?.({ attempt, delayMs, error: sendError, events: serialized.length });
        await sleep(delayMs, options.signal).catch(() => undefined);
      }
    }
  };

  const dispatch = async (serialized: string[], bytes: number) => {
    const task = deliver(serialized, bytes).finally(() => inFlight.delete(task));
    inFlight.add(task);
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
  };

  try {
    let batch: string[] = [];
    let batchBytes = 0;
    for await (const item of items) {
      if (failure || options.signal?.aborted) break;
      const text = JSON.stringify(item);
      const bytes = Buffer.byteLength(text) + 1;
      if (batch.length > 0 && (batch.length >= batchSize || batchBytes + bytes > maxBatchBytes)) {
        await dispatch(batch, batchBytes);
        batch = [];
        batchBytes = 0;
      }
      batch.push(text);
      batchBytes += bytes;
    }
    if (batch.length > 0 && !failure && !options.signal?.aborted) await dispatch(batch, batchBytes);
    await Promise.all(inFlight);
  } finally {
    client.close();
  }
  if (failure) throw failure;
  if (options.signal?.aborted)
    throw new DeliveryFailedError('interrupted', summary, new SendError('interrupted', false));
  return summary;
}

export interface SendFilesResult extends SendSummary {
  /** Lines or records that could not be read as JSON: reported, not sent. */
  unreadable: number;
}

/**
 * Sends audit log files (JSON lines, EventList JSON, '-' for stdin: whatever `kaudit detect` reads).
 * Unreadable records are reported through onUnreadable and counted; they cannot be sent.
 */
export interface SendFilesOptions extends SendItemsOptions, ReadAuditFilesOptions {
  onUnreadable?(record: { file: string; line: number; error: string }): void;
  /**
   * The URL for the events whose input names their cluster (a CloudWatch log group, an AKS resourceId,
   * a GKE resource label): `kaudit send` posts them to `<to>/<cluster>`. Unset: everything to `url`.
   */
  urlForCluster?(cluster: string): string;
}

export async function sendFiles(
  files: readonly string[],
  options: SendFilesOptions,
): Promise<SendFilesResult> {
  let unreadable = 0;
  const readOptions: ReadAuditFilesOptions = {
    ...(options.stdin ? { stdin: options.stdin } : {}),
    ...(options.onBytes ? { onBytes: options.onBytes } : {}),
  };
  // One sendItems per target URL, fed as the files are read (one cluster: one lane, as before).
  const lanes = new Map<string, { channel: Channel<unknown>; done: Promise<SendSummary> }>();
  let failure: unknown;
  const laneFor = (url: string) => {
    let lane = lanes.get(url);
    if (!lane) {
      const channel = createChannel<unknown>(Math.max(1, (options.batchSize ?? MAX_BATCH_EVENTS) * 4));
      const done = sendItems(channel, { ...options, url });
      done.catch((error) => {
        failure ??= error;
        channel.fail();
      });
      lane = { channel, done };
      lanes.set(url, lane);
    }
    return lane;
  };
  // The default lane first: a URL or TLS option it refuses is reported before any file is read.
  laneFor(options.url);
  await Promise.resolve();
  if (failure) throw failure;
  try {
    for await (const record of readAuditFiles(files, readOptions)) {
      if (failure) break;
      if ('error' in record) {
        unreadable += 1;
        options.onUnreadable?.({ file: record.file, line: record.line, error: record.error });
        continue;
      }
      const url =
        record.cluster !== undefined && options.urlForCluster
          ? options.urlForCluster(record.cluster)
          : options.url;
      await laneFor(url).channel.push(record.raw);
    }
  } finally {
    for (const lane of lanes.values()) lane.channel.close();
  }
  const results = await Promise.allSettled([...lanes.values()].map((lane) => lane.done));
  const summary: SendSummary = { batches: 0, sent: 0, accepted: 0, rejected: 0, retries: 0 };
  for (const result of results) {
    const part =
      result.status === 'fulfilled' ? result.value : (result.reason as DeliveryFailedError).summary;
    if (!part) continue;
    for (const key of Object.keys(summary) as Array<keyof SendSummary>) summary[key] += part[key];
  }
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    const error = (failed as PromiseRejectedResult).reason;
    if (error instanceof DeliveryFailedError) Object.assign(error.summary, summary, { unreadable });
    throw error;
  }
  return { ...summary, unreadable };
}

interface Channel<T> extends AsyncIterable<T> {
  /** Resolves once the consumer has room again (bounded memory while reading a large file). */
  push(item: T): Promise<void>;
  close(): void;
  /** The consumer gave up: pushes no longer wait. */
  fail(): void;
}

function createChannel<T>(highWater: number): Channel<T> {
  const buffer: T[] = [];
  let closed = false;
  let failed = false;
  let wake: (() => void) | undefined;
  let room: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  return {
    async push(item) {
      if (failed) return;
      buffer.push(item);
      notify();
      if (buffer.length >= highWater)
        await new Promise<void>((resolve) => {
          room = resolve;
        });
    },
    close() {
      closed = true;
      notify();
    },
    fail() {
      failed = true;
      room?.();
      room = undefined;
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (buffer.length > 0) {
          const item = buffer.shift() as T;
          if (buffer.length < highWater / 2) {
            room?.();
            room = undefined;
          }
          yield item;
          continue;
        }
        if (closed) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}

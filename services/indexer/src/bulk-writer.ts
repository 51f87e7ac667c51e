import { type Client, errors } from '@elastic/elasticsearch';
import type { Logger } from '@kaudit/service-kit';
import type { BulkItem } from './decode-message';
import type { IndexerMetrics } from './metrics';

export type ItemResult =
  | { result: 'created' | 'duplicate' }
  | { result: 'rejected'; status: number; reason: string; retriesExhausted: boolean };

export interface BulkWriteHooks {
  /** Resolves after delayMs (heartbeating meanwhile), or throws to abandon the write (stop, rebalance). */
  wait(delayMs: number): Promise<void>;
  /** Elasticsearch stopped answering (or refused our credentials): the caller pauses consumption. */
  onUnreachable?(error: unknown): void;
  /** Elasticsearch answered again after onUnreachable. */
  onReachable?(): void;
}

export interface BulkWriterOptions {
  client: Client;
  logger: Logger;
  metrics: IndexerMetrics;
  /** How many times an item answered with 5xx is re-sent before it goes to the dead-letter topic. */
  maxItemRetries: number;
  maxDelayMs: number;
  initialDelayMs?: number;
  random?: () => number;
  /** Aborts an in-flight request on shutdown (the batch is then re-delivered, and 409s absorb it). */
  signal?: AbortSignal;
}

interface BulkResponse {
  errors: boolean;
  items: Array<Record<string, { status: number; error?: EsError }>>;
}

interface EsError {
  type?: string;
  reason?: string;
  caused_by?: EsError;
}

/**
 * Writes documents with the `create` op and settles every one of them. Per item: 201 created, 409
 * already stored (a re-delivery: success), 429 re-sent until accepted, 5xx re-sent up to
 * maxItemRetries, any other 4xx rejected for its content. Only the items still pending are re-sent.
 * A request that gets no answer (Elasticsearch down, credentials refused, 5xx for the whole request)
 * is retried until it is answered, with exponential backoff and full jitter: nothing is dropped.
 */
export function createBulkWriter(options: BulkWriterOptions) {
  const { client, logger, metrics } = options;
  const initialDelayMs = options.initialDelayMs ?? 100;
  const random = options.random ?? Math.random;
  const backoff = (attempt: number) =>
    Math.round(random() * Math.min(options.maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 30)));

  async function write(items: BulkItem[], hooks: BulkWriteHooks): Promise<ItemResult[]> {
    const results: Array<ItemResult | undefined> = new Array(items.length);
    const serverErrors = new Array<number>(items.length).fill(0);
    let pending = items.map((_, i) => i);
    let itemAttempt = 0;
    let unreachableAttempt = 0;
    let unreachable = false;

    while (pending.length > 0) {
      const started = process.hrtime.bigint();
      let response: BulkResponse;
      try {
        response = await client.transport.request<BulkResponse>(
          { method: 'POST', path: '/_bulk', bulkBody: pending.map((i) => items[i]!.lines).join('') },
          { signal: options.signal },
        );
      } catch (error) {
        metrics.bulkDuration.observe({ outcome: 'error' }, seconds(started));
        if (error instanceof errors.RequestAbortedError) throw error;
        const rejection = wholeRequestRejection(error);
        if (rejection) {
          // The request itself is malformed or too large: each item is settled as rejected.
          for (const i of pending) results[i] = { result: 'rejected', ...rejection, retriesExhausted: false };
          break;
        }
        metrics.errors.inc({ stage: 'bulk', type: errorType(error) });
        metrics.retries.inc({ reason: retryReason(error) });
        metrics.elasticsearchUp.set(0);
        if (!unreachable) {
          unreachable = true;
          logger.warn(
            { err: error, documents: pending.length },
            'Elasticsearch unreachable: retrying until it answers',
          );
          hooks.onUnreachable?.(error);
        }
        await hooks.wait(backoff(unreachableAttempt++));
        continue;
      }
      metrics.elasticsearchUp.set(1);
      if (unreachable) {
        unreachable = false;
        unreachableAttempt = 0;
        logger.info({ documents: pending.length }, 'Elasticsearch answers again');
        hooks.onReachable?.();
      }

      const retry: number[] = [];
      response.items.forEach((entry, position) => {
        const i = pending[position]!;
        const { status, error } = Object.values(entry)[0] ?? { status: 0 };
        if (status >= 200 && status < 300) results[i] = { result: 'created' };
        else if (status === 409) results[i] = { result: 'duplicate' };
        else if (status === 429) {
          metrics.retries.inc({ reason: 'rate_limited' });
          retry.push(i);
        } else if (status >= 500 || status === 0) {
          serverErrors[i]! += 1;
          if (serverErrors[i]! > options.maxItemRetries) {
            results[i] = { result: 'rejected', status, reason: describe(error), retriesExhausted: true };
          } else {
            metrics.retries.inc({ reason: 'server_error' });
            retry.push(i);
          }
        } else results[i] = { result: 'rejected', status, reason: describe(error), retriesExhausted: false };
      });
      metrics.bulkDuration.observe(
        { outcome: retry.length > 0 || response.errors ? 'partial' : 'ok' },
        seconds(started),
      );
      metrics.bulkDocuments.observe(pending.length);
      if (response.items.length !== pending.length) {
        throw new Error(`_bulk answered ${response.items.length} items for ${pending.length} documents`);
      }
      pending = retry;
      if (pending.length > 0) {
        logger.info(
          { documents: pending.length, attempt: itemAttempt + 1 },
          'retrying documents Elasticsearch could not take yet',
        );
        await hooks.wait(backoff(itemAttempt++));
      }
    }
    return results.map(
      (result) => result ?? { result: 'rejected', status: 0, reason: 'unsettled', retriesExhausted: false },
    );
  }

  return { write };
}

export type BulkWriter = ReturnType<typeof createBulkWriter>;

const seconds = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9;

/** A 4xx for the whole request, other than auth and back-pressure, is about the payload: not retried. */
function wholeRequestRejection(error: unknown): { status: number; reason: string } | undefined {
  if (!(error instanceof errors.ResponseError)) return undefined;
  const status = error.meta.statusCode ?? 0;
  if (status < 400 || status >= 500 || status === 401 || status === 403 || status === 408 || status === 429) {
    return undefined;
  }
  const body = error.meta.body as { error?: EsError | string } | undefined;
  const reason = typeof body?.error === 'string' ? body.error : describe(body?.error);
  return { status, reason: `the whole _bulk request was refused: ${reason}` };
}

function retryReason(error: unknown): 'rate_limited' | 'server_error' | 'unreachable' {
  const status = error instanceof errors.ResponseError ? (error.meta.statusCode ?? 0) : 0;
  if (status === 429) return 'rate_limited';
  return status >= 500 ? 'server_error' : 'unreachable';
}

function errorType(error: unknown): string {
  if (error instanceof errors.ResponseError) return `http_${error.meta.statusCode}`;
  return error instanceof Error ? error.name : 'unknown';
}

/** `type: reason (caused_by.type: caused_by.reason)` as Elasticsearch reports a bulk item error. */
export function describe(error: EsError | undefined): string {
  if (!error) return 'no reason given';
  const own = [error.type, error.reason].filter(Boolean).join(': ');
  return error.caused_by ? `${own} (${describe(error.caused_by)})` : own;
}

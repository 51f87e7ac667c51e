import { type Client, errors } from '@elastic/elasticsearch';
import { backoffDelayMs } from '@kaudit/common';
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
 * already stored (a re-delivery: success), 429 re-sent until accepted, "cannot write now" (503,
 * unavailable shards, a cluster block such as a read-only index) re-sent until accepted with
 * consumption paused as for an outage, other 5xx re-sent up to maxItemRetries, any other 4xx rejected
 * for its content. Only the items still pending are re-sent. A request that gets no answer
 * (Elasticsearch down, credentials refused, 5xx for the whole request) is retried until it is
 * answered, with exponential backoff and full jitter: nothing is dropped. A request too large for
 * Elasticsearch (413) is split in halves; only a document too large on its own is rejected.
 */
export function createBulkWriter(options: BulkWriterOptions) {
  const { client, logger, metrics } = options;
  const initialDelayMs = options.initialDelayMs ?? 100;
  const random = options.random ?? Math.random;
  const backoff = (attempt: number) =>
    backoffDelayMs(attempt, { initialDelayMs, maxDelayMs: options.maxDelayMs, random });

  async function write(items: BulkItem[], hooks: BulkWriteHooks): Promise<ItemResult[]> {
    const results: Array<ItemResult | undefined> = new Array(items.length);
    await settle(
      items,
      items.map((_, i) => i),
      results,
      hooks,
    );
    return results.map(
      (result) => result ?? { result: 'rejected', status: 0, reason: 'unsettled', retriesExhausted: false },
    );
  }

  /** Settles items[i] for every i of `indices` into results[i]. */
  async function settle(
    items: BulkItem[],
    indices: number[],
    results: Array<ItemResult | undefined>,
    hooks: BulkWriteHooks,
  ): Promise<void> {
    const serverErrors = new Map<number, number>();
    let pending = indices;
    let itemAttempt = 0;
    let unreachableAttempt = 0;
    let unreachable = false;
    const becomeUnreachable = (error: unknown, message: string) => {
      metrics.elasticsearchUp.set(0);
      if (unreachable) return;
      unreachable = true;
      logger.warn({ err: error, documents: pending.length }, message);
      hooks.onUnreachable?.(error);
    };
    const becomeReachable = () => {
      metrics.elasticsearchUp.set(1);
      if (!unreachable) return;
      unreachable = false;
      unreachableAttempt = 0;
      logger.info({ documents: pending.length }, 'Elasticsearch answers again');
      hooks.onReachable?.();
    };

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
        if (statusOf(error) === 413 && pending.length > 1) {
          // Too large as a whole, not for its content: each half is settled on its own.
          metrics.errors.inc({ stage: 'bulk', type: 'http_413' });
          const half = Math.ceil(pending.length / 2);
          logger.info(
            { documents: pending.length, halves: [half, pending.length - half] },
            'Elasticsearch refused the _bulk request as too large (413): splitting it',
          );
          const halves = [pending.slice(0, half), pending.slice(half)];
          becomeReachable();
          for (const part of halves) await settle(items, part, results, hooks);
          return;
        }
        const rejection = wholeRequestRejection(error);
        if (rejection) {
          // The request itself is malformed, or one document too large: each item is rejected.
          becomeReachable();
          for (const i of pending) results[i] = { result: 'rejected', ...rejection, retriesExhausted: false };
          break;
        }
        metrics.errors.inc({ stage: 'bulk', type: errorType(error) });
        metrics.retries.inc({ reason: retryReason(error) });
        becomeUnreachable(error, 'Elasticsearch unreachable: retrying until it answers');
        await hooks.wait(backoff(unreachableAttempt++));
        continue;
      }
      if (response.items.length !== pending.length) {
        throw new Error(`_bulk answered ${response.items.length} items for ${pending.length} documents`);
      }

      const retry: number[] = [];
      let unavailable: { status: number; error?: EsError } | undefined;
      response.items.forEach((entry, position) => {
        const i = pending[position]!;
        const { status, error } = Object.values(entry)[0] ?? { status: 0 };
        if (status >= 200 && status < 300) results[i] = { result: 'created' };
        else if (status === 409) results[i] = { result: 'duplicate' };
        else if (status === 429) {
          metrics.retries.inc({ reason: 'rate_limited' });
          retry.push(i);
        } else if (cannotWriteNow(status, error)) {
          // The cluster, not the document: like an outage, never a reason to dead-letter.
          metrics.retries.inc({ reason: 'unavailable' });
          unavailable ??= { status, error };
          retry.push(i);
        } else if (status >= 500 || status === 0) {
          const count = (serverErrors.get(i) ?? 0) + 1;
          serverErrors.set(i, count);
          if (count > options.maxItemRetries) {
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
      pending = retry;

      if (unavailable) {
        becomeUnreachable(
          new Error(`HTTP ${unavailable.status} ${describe(unavailable.error)}`),
          'Elasticsearch cannot write these documents now: retrying until it can',
        );
        await hooks.wait(backoff(unreachableAttempt++));
        continue;
      }
      becomeReachable();
      if (pending.length > 0) {
        logger.info(
          { documents: pending.length, attempt: itemAttempt + 1 },
          'retrying documents Elasticsearch could not take yet',
        );
        await hooks.wait(backoff(itemAttempt++));
      }
    }
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
  if (status === 413) {
    // Only a request of one document gets here: larger ones are split first.
    return {
      status,
      reason: `the document alone is larger than Elasticsearch accepts in one request (http.max_content_length): ${reason}`,
    };
  }
  return { status, reason: `the whole _bulk request was refused: ${reason}` };
}

/**
 * An item Elasticsearch cannot write for the state of the cluster rather than for the document:
 * shards not available (a restart, a lost node), or a block such as a read-only index or a cluster
 * not yet recovered. Retried like an outage however long it lasts.
 */
function cannotWriteNow(status: number, error: EsError | undefined): boolean {
  if (status === 503) return true;
  const types = new Set<string>();
  for (let e: EsError | undefined = error; e; e = e.caused_by) if (e.type) types.add(e.type);
  return [...types].some((type) => UNAVAILABLE_TYPES.has(type));
}

const UNAVAILABLE_TYPES = new Set([
  'unavailable_shards_exception',
  'cluster_block_exception',
  'no_shard_available_action_exception',
  'node_not_connected_exception',
  'node_closed_exception',
  'primary_missing_action_exception',
]);

function statusOf(error: unknown): number | undefined {
  return error instanceof errors.ResponseError ? error.meta.statusCode : undefined;
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

import { isAppError, type Logger, retry } from '@kaudit/service-kit';
import type { Alert } from './alert';
import { DeliveryError, type Destination } from './destinations';
import { scrubSecrets } from './secrets';

export type DeliveryOutcome =
  | { status: 'delivered'; attempts: number }
  | {
      status: 'dead-lettered';
      attempts: number;
      reason: string;
      cause: 'rejected' | 'retries_exhausted' | 'retry_after_too_long' | 'backlog_full';
    }
  /** Shutdown interrupted it: neither delivered nor dead-lettered, so its message is not acknowledged. */
  | { status: 'aborted' };

export interface DeliveryQueueHooks {
  onRetry?(destination: string, reason: string, attempt: number, delayMs: number): void;
}

/** Short label for metrics: the HTTP status, or timeout / network. */
function failureLabel(error: unknown): string {
  return error instanceof DeliveryError ? error.failure : 'error';
}

/**
 * One queue per destination, each with its own concurrency: a destination that is slow or down only
 * ever holds up its own deliveries. Every delivery retries with exponential backoff and full jitter,
 * never sooner than a Retry-After, and ends delivered, dead-lettered (with the reason) or — only when
 * the service stops — aborted.
 */
export function createDeliveryQueue(
  destination: Destination,
  options: {
    logger: Logger;
    signal: AbortSignal;
    hooks?: DeliveryQueueHooks;
    random?: () => number;
    now?: () => number;
    /**
     * Deliveries waiting or in progress before the queue counts as full. A full queue of a destination
     * that is failing dead-letters one more delivery at once (backlog_full), so a destination that is
     * down never makes the alerter stop reading for the others; a healthy one is waited for instead.
     */
    maxQueued?: number;
  },
) {
  const maxQueued = options.maxQueued ?? Number.POSITIVE_INFINITY;
  const now = options.now ?? (() => Date.now());
  const logger = options.logger.child({ component: 'delivery', destination: destination.name });
  const waiting: Array<{ alert: Alert; resolve: (outcome: DeliveryOutcome) => void }> = [];
  let running = 0;
  /** Attempts failed since the last one that succeeded: > 0 means the destination is failing now. */
  let failuresInARow = 0;

  async function deliver(alert: Alert): Promise<DeliveryOutcome> {
    let attempts = 0;
    let tooLong = false;
    let outOfTime = false;
    const startedAt = now();
    try {
      await retry(
        async () => {
          attempts += 1;
          try {
            await destination.send(alert, options.signal);
          } catch (error) {
            if (!options.signal.aborted) failuresInARow += 1;
            throw error;
          }
          failuresInARow = 0;
        },
        {
          retries: destination.retry.retries,
          initialDelayMs: destination.retry.initialDelayMs,
          maxDelayMs: destination.retry.maxDelayMs,
          signal: options.signal,
          ...(options.random ? { random: options.random } : {}),
          isRetriable: (error) => {
            if (!isAppError(error) || !error.retriable) return false;
            if ((error.retryAfterMs ?? 0) > destination.retry.maxRetryAfterMs) {
              tooLong = true;
              return false;
            }
            if (now() - startedAt >= destination.retry.maxElapsedMs) {
              outOfTime = true;
              return false;
            }
            return true;
          },
          onRetry: (error, attempt, delayMs) => {
            const reason = failureLabel(error);
            logger.warn(
              { alertId: alert.id, attempt, delayMs, reason, err: { message: (error as Error).message } },
              'delivery failed, retrying',
            );
            options.hooks?.onRetry?.(destination.name, reason, attempt, delayMs);
          },
        },
      );
      return { status: 'delivered', attempts };
    } catch (error) {
      if (options.signal.aborted) return { status: 'aborted' };
      const message = scrubSecrets(
        error instanceof Error ? error.message : String(error),
        destination.secrets,
      );
      const retriable = isAppError(error) && error.retriable;
      const cause = tooLong ? 'retry_after_too_long' : retriable ? 'retries_exhausted' : 'rejected';
      const reason =
        cause === 'rejected'
          ? `rejected: ${message}`
          : cause === 'retry_after_too_long'
            ? `Retry-After exceeds ${destination.retry.maxRetryAfterMs} ms: ${message}`
            : outOfTime
              ? `gave up after ${attempts} attempts in ${Math.round((now() - startedAt) / 1000)} s: ${message}`
              : `gave up after ${attempts} attempts: ${message}`;
      return { status: 'dead-lettered', attempts, reason, cause };
    }
  }

  function pump(): void {
    while (running < destination.concurrency && waiting.length > 0) {
      const job = waiting.shift()!;
      running += 1;
      void deliver(job.alert)
        .then(job.resolve, (error: unknown) => {
          // deliver() never throws; if it does, the message stays unacknowledged and is read again.
          logger.error({ err: error, alertId: job.alert.id }, 'delivery crashed');
          job.resolve({ status: 'aborted' });
        })
        .finally(() => {
          running -= 1;
          pump();
        });
    }
  }

  options.signal.addEventListener(
    'abort',
    () => {
      for (const job of waiting.splice(0)) job.resolve({ status: 'aborted' });
    },
    { once: true },
  );

  return {
    name: destination.name,
    push(alert: Alert): Promise<DeliveryOutcome> {
      if (options.signal.aborted) return Promise.resolve({ status: 'aborted' });
      if (waiting.length + running >= maxQueued && failuresInARow > 0) {
        return Promise.resolve({
          status: 'dead-lettered',
          attempts: 0,
          cause: 'backlog_full',
          reason: `backlog full: ${waiting.length + running} deliveries to ${destination.name} already waiting or in progress`,
        });
      }
      return new Promise((resolve) => {
        waiting.push({ alert, resolve });
        pump();
      });
    },
    /** At maxQueued: a caller should wait for room unless the destination is failing. */
    full: () => waiting.length + running >= maxQueued,
    /** The last attempt failed (no success since): the destination is down or refusing. */
    failing: () => failuresInARow > 0,
    /** Deliveries waiting for a slot. */
    depth: () => waiting.length,
    /** Deliveries in progress, retries included. */
    active: () => running,
  };
}

export type DeliveryQueue = ReturnType<typeof createDeliveryQueue>;

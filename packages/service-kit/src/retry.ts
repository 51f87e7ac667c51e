import { backoffDelayMs, sleep } from '@kaudit/common';

/** Kept for callers of `@kaudit/service-kit`: written once in @kaudit/common. */
export { parseRetryAfterMs, sleep } from '@kaudit/common';

export interface RetryOptions {
  /** Attempts after the first one. */
  retries: number;
  initialDelayMs: number;
  maxDelayMs: number;
  factor?: number;
  /** Defaults to `err.retriable !== false`: AppErrors say so themselves, unknown errors are retried. */
  isRetriable?: (error: unknown) => boolean;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
  /**
   * Epoch ms after which no further attempt starts (the error of the last one is thrown); a wait is
   * cut short so the last attempt runs at the deadline. Unset: only `retries` bounds the attempts.
   */
  deadline?: number;
  /** Injected for tests; defaults to Math.random. */
  random?: () => number;
  /** Injected for tests; defaults to Date.now (jest's fake timers fake it too). */
  now?: () => number;
}

const defaultIsRetriable = (error: unknown) => (error as { retriable?: boolean } | null)?.retriable !== false;

/**
 * Runs fn until it succeeds, the error is not retriable, or the retries are spent. Backoff is
 * exponential with full jitter (AWS architecture blog; kafkajs src/retry), never shorter than a
 * Retry-After the remote side sent (err.retryAfterMs).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const isRetriable = options.isRetriable ?? defaultIsRetriable;
  const random = options.random ?? Math.random;
  const factor = options.factor ?? 2;
  const now = options.now ?? Date.now;
  const deadline = options.deadline ?? Number.POSITIVE_INFINITY;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= options.retries || !isRetriable(error) || options.signal?.aborted) throw error;
      const left = deadline - now();
      if (left <= 0) throw error;
      const backoff = backoffDelayMs(attempt, { ...options, factor, random });
      const retryAfter = (error as { retryAfterMs?: number } | null)?.retryAfterMs ?? 0;
      const delayMs = Math.min(Math.max(backoff, retryAfter), left);
      options.onRetry?.(error, attempt + 1, delayMs);
      await sleep(delayMs, options.signal);
    }
  }
}

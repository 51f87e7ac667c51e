/**
 * Backoff, sleep and Retry-After, written once for every retry loop (service-kit retry, the sink's
 * producer reconnect and spool drain, the indexer's bulk writer, the alerter's deliveries, `kaudit send`).
 */
export interface BackoffOptions {
  initialDelayMs: number;
  /** Ceiling of the delay before jitter; unset: none. */
  maxDelayMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /**
   * 'full' (default): uniform in [0, ceiling] (AWS architecture blog, kafkajs src/retry), so many
   * clients never retry in lockstep. 'none': the ceiling itself. A number r: ceiling x (1 + r x random),
   * kube-apiserver's webhook backoff.
   */
  jitter?: 'full' | 'none' | number;
  /** Injected for tests; defaults to Math.random. */
  random?: () => number;
}

/** The delay before the retry after failed attempt `attempt` (0 for the first failure). */
export function backoffDelayMs(attempt: number, options: BackoffOptions): number {
  const factor = options.factor ?? 2;
  // Past 2^30 the number means nothing but can reach Infinity x 0 = NaN with a zero random.
  const grown = options.initialDelayMs * factor ** Math.min(attempt, 1000);
  const ceiling = Math.min(options.maxDelayMs ?? Number.POSITIVE_INFINITY, grown);
  const jitter = options.jitter ?? 'full';
  if (jitter === 'none') return ceiling;
  const random = options.random ?? Math.random;
  if (jitter === 'full') return Math.round(random() * ceiling);
  return Math.round(ceiling * (1 + jitter * random()));
}

/** Resolves after `ms`; rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Parses an HTTP Retry-After header (seconds or an HTTP date) into milliseconds from `now`. Node's
 * http module gives a repeated header as an array: the first counts.
 */
export function parseRetryAfterMs(
  header: string | readonly string[] | null | undefined,
  now: number = Date.now(),
): number | undefined {
  const value = Array.isArray(header) ? header[0] : (header as string | null | undefined);
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

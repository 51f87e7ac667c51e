import { z } from 'zod';
import { envDurationMs } from './config';
import { AppError, type ErrorCode, isAppError } from './errors';
import type { Logger } from './logger';
import { retry } from './retry';

/**
 * Start-up against a broker or cluster that is still coming up (a fresh KRaft broker, a rolling restart,
 * Elasticsearch still electing a master, several services creating the same topics at once). A step
 * whose error is transient is retried with the shared backoff (retry.ts) until one deadline for the
 * whole start, KAFKA_STARTUP_TIMEOUT (default 2 min); only then is the service declared failed.
 * Permanent errors (a bad certificate, a refused password, a policy Elasticsearch rejects, our own
 * non-retriable AppErrors) fail at once: waiting cannot fix them. Each step logs one warning per class
 * of error (connection refused, "does not host this topic-partition"...), not one per attempt, so a
 * slow broker does not flood the log; later attempts of the same class log at debug.
 */

export const DEFAULT_STARTUP_TIMEOUT_MS = 120_000;

/** The KAFKA_STARTUP_TIMEOUT variable, for each service's config schema. */
export const startupTimeoutEnv = {
  KAFKA_STARTUP_TIMEOUT: envDurationMs(DEFAULT_STARTUP_TIMEOUT_MS).pipe(
    z.number().min(1000, 'must be at least 1s'),
  ),
};

export interface StartupOptions {
  logger: Logger;
  /** KAFKA_STARTUP_TIMEOUT in ms: how long the whole start may wait for Kafka (and Elasticsearch). */
  timeoutMs: number;
  /** Backoff between attempts (defaults 250 ms doubling to 5 s, full jitter). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Injected for tests. */
  now?: () => number;
  random?: () => number;
}

export interface StartupStepOptions {
  /** Which error is transient; default isTransientStartupError. */
  isRetriable?: (error: unknown) => boolean;
  /** The code of the error thrown when the deadline passes (default KAUDIT_ERR_KAFKA). */
  code?: ErrorCode;
  /** Stops waiting (the service is stopping): the step rejects with the last error. */
  signal?: AbortSignal;
}

export interface Startup {
  /** Runs one idempotent step (connect, ensure topics, apply resources), retrying transient errors. */
  step<T>(what: string, fn: () => Promise<T>, options?: StartupStepOptions): Promise<T>;
  /** Epoch ms of the deadline shared by every step. */
  readonly deadline: number;
}

/** One deadline for a service's whole start; each step retries against it. */
export function createStartup(options: StartupOptions): Startup {
  const now = options.now ?? Date.now;
  const deadline = now() + options.timeoutMs;
  const logger = options.logger.child({ component: 'startup' });
  return {
    deadline,
    async step<T>(what: string, fn: () => Promise<T>, stepOptions: StartupStepOptions = {}): Promise<T> {
      const isRetriable = stepOptions.isRetriable ?? isTransientStartupError;
      const seen = new Set<string>();
      let failures = 0;
      try {
        const result = await retry(() => fn(), {
          retries: Number.MAX_SAFE_INTEGER,
          initialDelayMs: options.initialDelayMs ?? 250,
          maxDelayMs: options.maxDelayMs ?? 5000,
          deadline,
          now,
          ...(options.random ? { random: options.random } : {}),
          ...(stepOptions.signal ? { signal: stepOptions.signal } : {}),
          isRetriable,
          onRetry: (err, attempt, delayMs) => {
            failures = attempt;
            const errorClass = startupErrorClass(err);
            const fields = { step: what, attempt, delayMs, errorClass, err };
            if (seen.has(errorClass)) {
              logger.debug(fields, `${what}: still not available; retrying`);
              return;
            }
            seen.add(errorClass);
            logger.warn(
              { ...fields, deadlineInMs: Math.max(0, deadline - now()) },
              `${what}: not available yet (${errorClass}); retrying until KAFKA_STARTUP_TIMEOUT`,
            );
          },
        });
        if (failures > 0) logger.info({ step: what, attempts: failures + 1 }, `${what}: done`);
        return result;
      } catch (error) {
        if (!isRetriable(error) || stepOptions.signal?.aborted) throw error;
        throw new AppError(
          stepOptions.code ?? 'KAUDIT_ERR_KAFKA',
          `${what}: still failing when KAFKA_STARTUP_TIMEOUT (${options.timeoutMs} ms) ran out: ${(error as Error).message}`,
          { cause: error, retriable: false },
        );
      }
    },
  };
}

/** Codes of socket errors that a server coming up (or a name not yet in DNS) gives. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
]);
/** kafkajs errors that say "not yet" whatever their retriable flag (kafkajs marks some of them false). */
const TRANSIENT_NAMES = new Set([
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSLockTimeout',
  'KafkaJSTimeout',
  // @elastic/elasticsearch: nothing answered.
  'ConnectionError',
  'TimeoutError',
  'NoLivingConnectionsError',
]);
/** TLS verification and authentication: no amount of waiting fixes these. */
const PERMANENT_CODE =
  /^(CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS_|ERR_SSL_|ERR_OSSL_|HOSTNAME_MISMATCH)/;
const PERMANENT_NAMES = new Set(['KafkaJSSASLAuthenticationError']);

interface ErrorLike {
  name?: string;
  code?: unknown;
  type?: unknown;
  retriable?: unknown;
  cause?: unknown;
  errors?: unknown;
  meta?: { statusCode?: number };
}

/** The error and its causes (kafkajs wraps the broker's error in NumberOfRetriesExceeded, and so on). */
function chain(error: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  let current: unknown = error;
  while (current !== null && typeof current === 'object' && out.length < 10) {
    const e = current as ErrorLike;
    out.push(e);
    if (Array.isArray(e.errors)) for (const inner of e.errors) out.push(...chain(inner));
    current = e.cause;
  }
  return out;
}

/**
 * Transient at start-up: a kafkajs error marked retriable (e.g. "This server does not host this
 * topic-partition" while a new topic's metadata propagates), a connection refused or reset, a
 * request timeout, Elasticsearch not answering or answering 5xx/429. Permanent: a TLS or SASL failure,
 * a kaudit AppError that says it is not retriable, anything unrecognised.
 */
export function isTransientStartupError(error: unknown): boolean {
  const errors = chain(error);
  for (const e of errors) {
    if (typeof e.code === 'string' && PERMANENT_CODE.test(e.code)) return false;
    if (e.name && PERMANENT_NAMES.has(e.name)) return false;
    if (isAppError(e) && !e.retriable) return false;
  }
  return errors.some((e) => {
    if (e.retriable === true) return true;
    if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
    if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
    const status = e.name === 'ResponseError' ? (e.meta?.statusCode ?? 0) : 0;
    return status >= 500 || status === 429;
  });
}

/** What is logged once per step: the innermost error's protocol type, socket code or name. */
export function startupErrorClass(error: unknown): string {
  const errors = chain(error);
  for (const e of [...errors].reverse()) {
    if (typeof e.type === 'string') return e.type;
    if (typeof e.code === 'string') return e.code;
  }
  return errors[errors.length - 1]?.name ?? 'Error';
}

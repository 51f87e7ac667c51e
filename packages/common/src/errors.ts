/**
 * The catalog of kaudit error codes, only codes the code throws. docs/errors.md documents each one; the
 * docs test in service-kit (service-kit.test.ts) fails when the two disagree. Add a code here AND there.
 */
export const ERROR_CODES = {
  KAUDIT_ERR_CONFIG: 'Configuration is invalid; the message lists every bad or missing variable.',
  KAUDIT_ERR_BAD_REQUEST: 'The request body is not valid JSON, JSON lines, or an audit Event/EventList.',
  KAUDIT_ERR_UNAUTHENTICATED: 'The client presented no valid certificate or bearer token.',
  KAUDIT_ERR_FORBIDDEN:
    'The client is authenticated but not allowed (e.g. certificate subject not in the allow-list).',
  KAUDIT_ERR_PAYLOAD_TOO_LARGE: 'The request body exceeds the configured size limit.',
  KAUDIT_ERR_UNSUPPORTED_MEDIA_TYPE: 'The Content-Type is not application/json or application/x-ndjson.',
  KAUDIT_ERR_REQUEST_TIMEOUT: 'The request did not complete within the configured timeout.',
  KAUDIT_ERR_KAFKA: 'Kafka did not acknowledge a produce, commit or admin request.',
  KAUDIT_ERR_SPOOL:
    'The on-disk spool could not be written or read, or is full (HTTP 503 with Retry-After: retry later).',
  KAUDIT_ERR_ELASTICSEARCH: 'Elasticsearch rejected or did not answer a request.',
  KAUDIT_ERR_POLICY: 'A policy file (detection, redaction, routing, Elasticsearch) is invalid.',
  KAUDIT_ERR_DELIVERY: 'An alert destination did not accept a delivery within its retry budget.',
  KAUDIT_ERR_INPUT: 'An input file or record could not be read or parsed.',
  KAUDIT_ERR_INTERNAL: 'An unexpected failure; the log line carries the cause.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface AppErrorOptions {
  statusCode?: number;
  retriable?: boolean;
  cause?: unknown;
  /** When the remote side told us how long to wait (Retry-After), in milliseconds. */
  retryAfterMs?: number;
}

/** The one error type: a code from the catalog, an HTTP status for boundaries, and whether a retry may help. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly retriable: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.statusCode = options.statusCode ?? 500;
    this.retriable = options.retriable ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

export { type BackoffOptions, backoffDelayMs, parseRetryAfterMs, sleep } from './backoff';
export { DURATION_EXAMPLES, formatDuration, parseDurationMs } from './duration';
export { AppError, type AppErrorOptions, ERROR_CODES, type ErrorCode, isAppError } from './errors';
export { compileGlob, type Glob, globMatcher } from './glob';
export { serially } from './serial';
export { withTimeout } from './timeout';

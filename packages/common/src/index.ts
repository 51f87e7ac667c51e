export { type BackoffOptions, backoffDelayMs, parseRetryAfterMs, sleep } from './backoff';
export { DURATION_EXAMPLES, formatDuration, parseDurationMs } from './duration';
export { compileGlob, type Glob, globMatcher } from './glob';
export { withTimeout } from './timeout';

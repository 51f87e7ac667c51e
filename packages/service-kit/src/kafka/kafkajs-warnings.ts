/**
 * kafkajs 2.2.4 passes negative delays to setTimeout (RequestQueue.scheduleCheckPendingRequests computes
 * `throttledUntil - Date.now()` with throttledUntil still -1), which Node >= 24 reports as a
 * TimeoutNegativeWarning on the first client connection. Node clamps the delay to 1 ms, which is what
 * kafkajs meant, so the warning is noise (tulios/kafkajs#1751, open; fixes #1755/#1756 unreleased).
 *
 * This drops exactly that warning when kafkajs set the timer and lets every other warning through
 * unchanged, printed by Node itself. A TimeoutNegativeWarning from our own code is a bug and still
 * shows (unless kafkajs set its negative timer first: Node reports only the first one per process).
 * It patches process.emitWarning, which Node's timers call, rather than replacing the 'warning'
 * listeners, so --no-warnings, --trace-warnings and --throw-deprecation keep working. Idempotent.
 */
export function suppressKafkajsTimeoutWarning(target: WarningEmitter = process): void {
  if ((target.emitWarning as Patched)[PATCHED]) return;
  const original = target.emitWarning;
  const patched: Patched = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    if (warningType(warning, rest[0]) === 'TimeoutNegativeWarning' && calledFromKafkajs()) return;
    return (original as (...args: unknown[]) => void).call(this, warning, ...rest);
  };
  patched[PATCHED] = true;
  target.emitWarning = patched as WarningEmitter['emitWarning'];
}

export interface WarningEmitter {
  emitWarning: NodeJS.Process['emitWarning'];
}

const PATCHED = Symbol.for('kaudit.suppressKafkajsTimeoutWarning');
type Patched = ((this: unknown, warning: string | Error, ...rest: unknown[]) => void) & {
  [PATCHED]?: boolean;
};

/** emitWarning(warning, type?) or emitWarning(warning, { type }) or an Error whose name is the type. */
function warningType(warning: string | Error, second: unknown): string {
  if (typeof second === 'string') return second;
  if (
    second !== null &&
    typeof second === 'object' &&
    typeof (second as { type?: unknown }).type === 'string'
  )
    return (second as { type: string }).type;
  return warning instanceof Error ? warning.name : 'Warning';
}

const KAFKAJS_FRAME = /[\\/]node_modules[\\/]kafkajs[\\/]/;

/** Whether a kafkajs function is on the stack (the timer is set synchronously: setTimeout -> here). */
function calledFromKafkajs(): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 20;
  try {
    return KAFKAJS_FRAME.test(new Error().stack ?? '');
  } finally {
    Error.stackTraceLimit = limit;
  }
}

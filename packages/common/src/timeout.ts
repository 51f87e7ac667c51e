/**
 * `promise`, or what `onTimeout` makes of it once `ms` have passed: its return value resolves, what it
 * throws rejects. The timer is cleared either way, so a settled race never keeps the process alive,
 * and the loser's rejection is handled (Promise.race subscribes to it), so it never surfaces as an
 * unhandled rejection.
 */
export async function withTimeout<T, F = never>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => F,
): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<F>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error);
      }
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs async tasks one at a time, in the order they were handed in (a FIFO lock): a task starts once the
 * one before it settled, whether it resolved or rejected. For CPU-bound work that yields now and then
 * (so I/O in flight can progress) but must not interleave with other such work.
 */
export function serially(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task);
    tail = run.catch(() => undefined);
    return run;
  };
}

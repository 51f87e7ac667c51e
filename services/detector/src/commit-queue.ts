import type { Finding } from '@kaudit/audit-schema';
import type { Message } from 'kafkajs';

/** What one batch (or idle flush) must commit atomically. */
export interface Work {
  findings: Finding[];
  state: Message[];
  deadLetters: Message[];
  offsets: Array<{ partition: number; offset: string }>;
}

export interface CommitQueue {
  /** Resolves once a transaction carrying `work` committed; rejects if that transaction failed. */
  submit(work: Work): Promise<void>;
  /** Resolves when nothing is waiting or being committed. */
  idle(): Promise<void>;
}

/**
 * One transaction at a time on the transactional producer, and group commit: work submitted while a
 * transaction is in flight waits, and everything that waited goes into the next transaction together.
 * The transaction is the fixed cost of a batch (several broker round trips and a marker per partition),
 * so partitions whose batches were processed during one commit share the next instead of queueing one
 * transaction each. A failed transaction fails every submission it carried.
 */
export function createCommitQueue(commit: (work: Work) => Promise<void>): CommitQueue {
  let waiting: Array<{ work: Work; resolve: () => void; reject: (err: unknown) => void }> = [];
  let running: Promise<void> | undefined;

  const run = async () => {
    while (waiting.length > 0) {
      const taken = waiting;
      waiting = [];
      try {
        await commit(merge(taken.map((item) => item.work)));
        for (const item of taken) item.resolve();
      } catch (err) {
        for (const item of taken) item.reject(err);
      }
    }
    // Set in the same step as the loop's last check, so a submission never finds a finished runner.
    running = undefined;
  };

  return {
    submit(work) {
      const done = new Promise<void>((resolve, reject) => waiting.push({ work, resolve, reject }));
      running ??= run();
      return done;
    },
    idle: () => running ?? Promise.resolve(),
  };
}

function merge(works: Work[]): Work {
  if (works.length === 1) return works[0]!;
  return {
    findings: works.flatMap((w) => w.findings),
    state: works.flatMap((w) => w.state),
    deadLetters: works.flatMap((w) => w.deadLetters),
    offsets: works.flatMap((w) => w.offsets),
  };
}

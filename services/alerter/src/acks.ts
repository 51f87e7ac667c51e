import {
  buildDeadLetter,
  deadLetterMessage,
  type Logger,
  type OffsetTracker,
  retry,
  type TrackedOffset,
} from '@kaudit/service-kit';
import type { Consumer, Producer } from 'kafkajs';
import type { AlerterMetrics } from './metrics';

/** Counts the outcomes one Kafka message waits for; acknowledges it when the last one is in. */
export interface MessageTracker {
  add(): void;
  done(): void;
  /** An outcome could not be recorded (or shutdown interrupted it): never acknowledge this message. */
  fail(): void;
}

export interface SourceInfo {
  cluster?: string;
  topic?: string;
  partition?: number;
  offset?: string;
}

export interface Acks {
  /** The tracker of one read message: its offset is acknowledged once every outcome it waits for is in. */
  tracker(handle: TrackedOffset): MessageTracker;
  /** Adds `outcome` to what `tracker` waits for; a false outcome means the message is never acknowledged. */
  settle(tracker: MessageTracker, outcome: Promise<boolean>): void;
  /** A write that must reach Kafka before a message is acknowledged (see below); false at shutdown. */
  persist(stage: string, write: () => Promise<unknown>): Promise<boolean>;
  /** A dead letter on the dead-letter topic, persisted like any outcome. */
  deadLetter(
    reason: string,
    raw: unknown,
    source: SourceInfo,
    target?: string,
    key?: string,
  ): Promise<boolean>;
  /** Commits the contiguous acknowledged prefix of every partition; a failed commit is retried later. */
  commit(consumer: Consumer | undefined): Promise<void>;
  /** Writes past their first retries (still being retried): the alerter is not ready meanwhile. */
  failingWrites(): number;
}

/**
 * Acknowledgement: a finding's offset becomes committable only when every outcome it waits for (a
 * delivery recorded on the delivered topic, a dead letter, a digest it was folded into) is on Kafka.
 */
export function createAcks(deps: {
  offsets: OffsetTracker;
  producer: Producer;
  logger: Logger;
  metrics: AlerterMetrics;
  topics: { alertsTopic: string; dlqTopic: string };
  writeRetry: { retries: number; initialDelayMs: number; maxDelayMs: number };
  signal: AbortSignal;
  now: () => number;
}): Acks {
  const { offsets, producer, logger, metrics, writeRetry } = deps;
  let failingWrites = 0;
  let committing = false;

  /**
   * Writes that must reach Kafka before a message is acknowledged. Retried until they succeed: giving
   * up would leave the message unacknowledged, and with it every later offset of its partition, until
   * a restart. After writeRetry.retries failed attempts the alerter reports not ready (an operator and
   * the orchestrator see it) and keeps trying; it is ready again once the write succeeds. Only stopping
   * abandons the write (false): the message is read again after the restart.
   */
  async function persist(stage: string, write: () => Promise<unknown>): Promise<boolean> {
    let failing = false;
    try {
      await retry(write, {
        retries: Number.POSITIVE_INFINITY,
        initialDelayMs: writeRetry.initialDelayMs,
        maxDelayMs: writeRetry.maxDelayMs,
        signal: deps.signal,
        isRetriable: () => true, // a broker outage is the case this is for, whatever kafkajs calls it
        onRetry: (err, attempt, delayMs) => {
          metrics.errors.inc({ stage, type: (err as Error).name ?? 'Error' });
          if (attempt > writeRetry.retries && !failing) {
            failing = true;
            failingWrites += 1;
            logger.error({ err, stage, attempt }, 'cannot write to Kafka; not ready while retrying');
          } else logger.warn({ err, stage, attempt, delayMs }, 'write to Kafka failed, retrying');
        },
      });
      if (failing) logger.info({ stage }, 'write to Kafka succeeded again');
      return true;
    } catch (err) {
      logger.warn({ err, stage }, 'write to Kafka abandoned at shutdown; the message stays unacknowledged');
      return false;
    } finally {
      if (failing) failingWrites -= 1;
    }
  }

  return {
    tracker(handle) {
      let remaining = 1; // the guard, released by the caller once every outcome has been added
      let failed = false;
      return {
        add: () => {
          remaining += 1;
        },
        done: () => {
          remaining -= 1;
          if (remaining === 0 && !failed) offsets.ack(handle);
        },
        fail: () => {
          failed = true;
        },
      };
    },

    settle(tracker, outcome) {
      tracker.add();
      void outcome.then((ok) => (ok ? tracker.done() : tracker.fail()));
    },

    persist,

    deadLetter(reason, raw, source, target, key) {
      const letter = buildDeadLetter({
        source: 'alerter',
        reason,
        at: deps.now(),
        cluster: source.cluster,
        topic: source.topic,
        partition: source.partition,
        offset: source.offset,
        target,
        raw,
      });
      return persist('dead-letter', () =>
        producer.send({
          topic: deps.topics.dlqTopic,
          acks: -1,
          messages: [deadLetterMessage(letter, { key: key ?? null })],
        }),
      );
    },

    async commit(consumer) {
      if (committing || !consumer) return;
      committing = true;
      const ready = offsets.takeCommittable();
      try {
        if (ready.length > 0) {
          await consumer.commitOffsets(ready.map((o) => ({ topic: deps.topics.alertsTopic, ...o })));
          logger.debug({ offsets: ready }, 'offsets committed');
        }
      } catch (err) {
        offsets.restore(ready);
        metrics.errors.inc({ stage: 'commit', type: (err as Error).name ?? 'Error' });
        logger.warn({ err }, 'offset commit failed; will retry');
      } finally {
        committing = false;
      }
    },

    failingWrites: () => failingWrites,
  };
}

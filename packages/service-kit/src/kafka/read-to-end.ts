import { withTimeout } from '@kaudit/common';
import type { Consumer, ConsumerConfig, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { AppError } from '../errors';

/**
 * Reads topics from the beginning to their end as of the call (each partition's high watermark then),
 * with a throw-away consumer group: kafkajs has no manual partition assignment. Written once for the
 * detector's changelog restore, the alerter's delivered-ids store, devstack's topic reader and the test
 * helpers.
 *
 * Transactional topics end in control records that are never delivered as messages, so progress is
 * tracked from the consumer's END_BATCH_PROCESS events, which also fire for batches of control records
 * only: a partition is read once a batch ends at or past its end, or the consumer is not behind.
 */
export interface ReadToEndOptions {
  kafka: Kafka;
  topics: readonly string[];
  groupId: string;
  /** Called for each message before the end of a partition wanted (and after it too with `tail`). */
  onMessage: (message: KafkaMessage, topic: string, partition: number) => void;
  /** Which partitions to wait for and deliver (default: all). */
  wants?: (topic: string, partition: number) => boolean;
  timeoutMs: number;
  /** The error when the end is not reached in time; `behind` lists the `topic/partition`s still short. */
  timeoutError?: (behind: string[], timeoutMs: number) => Error;
  /** Keep the consumer running past the end, delivering what comes next (the caller stops it). */
  tail?: boolean;
  /** Deletes the throw-away group once read (not with `tail`); failures are logged at debug. */
  deleteGroup?: { logger: Logger };
  consumer?: Partial<Omit<ConsumerConfig, 'groupId'>>;
  /** Wraps each broker call, e.g. a start-up step that retries while the broker comes up. */
  step?: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
}

export interface ReadToEnd {
  /** The consumer, still running with `tail`, disconnected otherwise. */
  consumer: Consumer;
}

const partitionKey = (topic: string, partition: number) => `${topic}/${partition}`;

/** Per non-empty `topic/partition` wanted: its high watermark now. */
export async function topicEnds(
  kafka: Kafka,
  topics: readonly string[],
  wants: (topic: string, partition: number) => boolean = () => true,
): Promise<Map<string, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<string, bigint>();
  try {
    for (const topic of topics) {
      for (const end of await admin.fetchTopicOffsets(topic)) {
        if (wants(topic, end.partition) && BigInt(end.high) > BigInt(end.low))
          ends.set(partitionKey(topic, end.partition), BigInt(end.high));
      }
    }
  } finally {
    await admin.disconnect();
  }
  return ends;
}

export async function readToEnd(options: ReadToEndOptions): Promise<ReadToEnd> {
  const { kafka, topics } = options;
  const wants = options.wants ?? (() => true);
  const step = options.step ?? (<T>(_name: string, fn: () => Promise<T>) => fn());
  const ends = await step('read the topic offsets', () => topicEnds(kafka, topics, wants));
  const consumer = kafka.consumer({ ...options.consumer, groupId: options.groupId });
  if (ends.size === 0 && !options.tail) return { consumer };

  const waiting = new Set(ends.keys());
  let caughtUp!: () => void;
  const done = new Promise<void>((resolve) => {
    caughtUp = resolve;
  });
  if (waiting.size === 0) caughtUp();
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const key = partitionKey(payload.topic, payload.partition);
    const end = ends.get(key);
    if (end === undefined || !waiting.has(key)) return;
    if (BigInt(payload.lastOffset) + 1n >= end || BigInt(payload.offsetLag) <= 0n) {
      waiting.delete(key);
      if (waiting.size === 0) caughtUp();
    }
  });

  let running = false;
  try {
    await step('connect the reader', () => consumer.connect());
    await step('subscribe the reader', () =>
      consumer.subscribe({ topics: [...topics], fromBeginning: true }),
    );
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (!wants(batch.topic, batch.partition)) return;
        const end = ends.get(partitionKey(batch.topic, batch.partition)) ?? 0n;
        for (const message of batch.messages) {
          if (!options.tail && BigInt(message.offset) >= end) break;
          options.onMessage(message, batch.topic, batch.partition);
        }
      },
    });
    running = true;
    await withTimeout(done, options.timeoutMs, () => {
      const behind = [...waiting];
      throw (
        options.timeoutError?.(behind, options.timeoutMs) ??
        new AppError(
          'KAUDIT_ERR_KAFKA',
          `reading ${topics.join(', ')}: not at the end after ${options.timeoutMs} ms (${behind.join(', ')})`,
          { retriable: true },
        )
      );
    });
  } catch (error) {
    await consumer.disconnect();
    if (options.deleteGroup) await deleteGroup(kafka, options.groupId, options.deleteGroup.logger);
    throw error;
  }
  if (!options.tail || !running) {
    await consumer.disconnect();
    if (options.deleteGroup) await deleteGroup(kafka, options.groupId, options.deleteGroup.logger);
  }
  return { consumer };
}

async function deleteGroup(kafka: Kafka, groupId: string, logger: Logger): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteGroups([groupId]);
  } catch (err) {
    logger.debug({ err, groupId }, 'could not delete the throw-away consumer group');
  } finally {
    await admin.disconnect();
  }
}

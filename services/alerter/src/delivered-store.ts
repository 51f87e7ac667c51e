import { randomUUID } from 'node:crypto';
import {
  AppError,
  createStartup,
  DEFAULT_STARTUP_TIMEOUT_MS,
  ensureTopics,
  type Logger,
  readToEnd,
  type Startup,
} from '@kaudit/service-kit';
import type { Consumer, Kafka, Producer } from 'kafkajs';

/** The start-up steps as they were always logged. */
const STEP_NAMES: Record<string, string> = {
  'read the topic offsets': 'read the delivered-ids topic offsets',
  'connect the reader': 'connect the delivered-ids reader',
  'subscribe the reader': 'subscribe to the delivered-ids topic',
};

export type RecordedOutcome = 'delivered' | 'dead-lettered';

/** Insertion-ordered map that forgets its oldest entries beyond maxEntries: memory stays bounded. */
export function createBoundedMap<V>(maxEntries: number) {
  const map = new Map<string, V>();
  return {
    get: (key: string) => map.get(key),
    has: (key: string) => map.has(key),
    delete: (key: string) => map.delete(key),
    set(key: string, value: V) {
      map.delete(key);
      map.set(key, value);
      while (map.size > maxEntries) map.delete(map.keys().next().value as string);
    },
    size: () => map.size,
  };
}

export function deliveryKey(destination: string, alertId: string): string {
  return `${destination}/${alertId}`;
}

export interface DeliveredStoreOptions {
  kafka: Kafka;
  /** Shared with the rest of the alerter: records are acknowledged by all in-sync replicas. */
  producer: Producer;
  topic: string;
  /** Prefix of the throwaway group the store reads with (every instance reads every partition). */
  groupIdPrefix: string;
  maxEntries: number;
  /** How long the compacted topic keeps a record (cleanup.policy=compact,delete). */
  retentionMs: number;
  loadTimeoutMs: number;
  logger: Logger;
  /** Retries the start-up steps while the broker comes up (default: a 2 min deadline of its own). */
  startup?: Startup;
}

/**
 * Which (destination, alert id) pairs already have an outcome — delivered or dead-lettered — so the
 * same finding reaches a destination at most once, across restarts and rebalances. Outcomes are
 * written to a compacted topic keyed `${destination}/${alertId}`; at start-up the topic is read back
 * to its end before the alerter consumes anything, and afterwards it is tailed so outcomes recorded by
 * other instances (a partition that moved in a rebalance) are known too.
 */
export function createDeliveredStore(options: DeliveredStoreOptions) {
  const logger = options.logger.child({ component: 'delivered-store' });
  const outcomes = createBoundedMap<RecordedOutcome>(options.maxEntries);
  let consumer: Consumer | undefined;
  let loaded = false;

  return {
    async start(): Promise<void> {
      const startup =
        options.startup ?? createStartup({ logger: options.logger, timeoutMs: DEFAULT_STARTUP_TIMEOUT_MS });
      await startup.step('ensure the delivered-ids topic', () =>
        ensureTopics(options.kafka, [
          {
            topic: options.topic,
            numPartitions: 3,
            configEntries: [
              { name: 'cleanup.policy', value: 'compact,delete' },
              { name: 'retention.ms', value: String(options.retentionMs) },
            ],
          },
        ]),
      );
      // Read back to its end before the alerter consumes anything, then tailed (outcomes recorded
      // by other instances).
      ({ consumer } = await readToEnd({
        kafka: options.kafka,
        topics: [options.topic],
        groupId: `${options.groupIdPrefix}.${randomUUID()}`,
        consumer: { maxWaitTimeInMs: 1000 },
        tail: true,
        step: (name, fn) => startup.step(STEP_NAMES[name] ?? name, fn),
        onMessage: (message) => {
          const key = message.key?.toString('utf8');
          if (!key) return;
          // A tombstone is how an operator re-drives a dead letter (README "Dead letters"): the
          // outcome is forgotten, so the finding produced again is delivered again.
          if (!message.value) outcomes.delete(key);
          else {
            const value = safeOutcome(message.value.toString('utf8'));
            if (value) outcomes.set(key, value);
          }
        },
        timeoutMs: options.loadTimeoutMs,
        timeoutError: () =>
          new AppError(
            'KAUDIT_ERR_KAFKA',
            `could not read ${options.topic} back within ${options.loadTimeoutMs} ms; refusing to start without it`,
            { retriable: true },
          ),
      }));
      loaded = true;
      logger.info({ topic: options.topic, entries: outcomes.size() }, 'delivered ids loaded');
    },

    loaded: () => loaded,

    get(destination: string, alertId: string): RecordedOutcome | undefined {
      return outcomes.get(deliveryKey(destination, alertId));
    },

    /** Resolves once Kafka has the record; only then may the message behind it be acknowledged. */
    async record(destination: string, alertId: string, outcome: RecordedOutcome): Promise<void> {
      const key = deliveryKey(destination, alertId);
      await options.producer.send({
        topic: options.topic,
        acks: -1,
        messages: [{ key, value: JSON.stringify({ outcome, at: new Date().toISOString() }) }],
      });
      outcomes.set(key, outcome);
    },

    size: () => outcomes.size(),

    async stop(): Promise<void> {
      await consumer?.disconnect();
      consumer = undefined;
    },
  };
}

function safeOutcome(text: string): RecordedOutcome | undefined {
  try {
    const outcome = (JSON.parse(text) as { outcome?: unknown }).outcome;
    return outcome === 'delivered' || outcome === 'dead-lettered' ? outcome : undefined;
  } catch {
    return undefined;
  }
}

export type DeliveredStore = ReturnType<typeof createDeliveredStore>;

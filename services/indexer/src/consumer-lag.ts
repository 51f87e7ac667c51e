import { type Logger, partitionLags } from '@kaudit/service-kit';
import type { Admin } from 'kafkajs';
import type { IndexerMetrics } from './metrics';

export interface LagSamplerOptions {
  admin: Pick<Admin, 'connect' | 'disconnect' | 'fetchTopicOffsets' | 'fetchOffsets'>;
  groupId: string;
  topics: string[];
  metrics: Pick<IndexerMetrics, 'consumerLag' | 'errors'>;
  logger: Logger;
  intervalMs: number;
}

/**
 * Refreshes kaudit_indexer_consumer_lag from the broker every intervalMs, so the gauge shows the
 * backlog also while nothing is committed: an idle topic, or consumption paused while
 * Elasticsearch is away, when the backlog is exactly what an operator wants to see growing.
 */
export function createLagSampler(options: LagSamplerOptions) {
  const { admin, metrics, logger } = options;
  let timer: NodeJS.Timeout | undefined;
  let connected = false;
  let running: Promise<void> | undefined;
  let failing = false;

  async function sample(): Promise<void> {
    try {
      if (!connected) {
        await admin.connect();
        connected = true;
      }
      const commits = await admin.fetchOffsets({ groupId: options.groupId, topics: options.topics });
      for (const topic of options.topics) {
        const ends = await admin.fetchTopicOffsets(topic);
        const partitions = commits.find((c) => c.topic === topic)?.partitions ?? [];
        for (const { partition, lag } of partitionLags(ends, partitions)) {
          metrics.consumerLag.set({ topic, partition: String(partition) }, lag);
        }
      }
      if (failing) logger.info({ topics: options.topics }, 'consumer lag readable again');
      failing = false;
    } catch (err) {
      metrics.errors.inc({ stage: 'lag', type: (err as Error).name });
      // Once per outage: Kafka being away is already logged by the consumer.
      if (!failing) logger.warn({ err }, 'could not read the consumer lag; the gauge keeps its last value');
      failing = true;
    }
  }

  return {
    /** Samples now, then every intervalMs; a sample still running is never overlapped. */
    start(): void {
      const tick = () => {
        running ??= sample().finally(() => {
          running = undefined;
        });
      };
      tick();
      timer = setInterval(tick, options.intervalMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
      if (connected) await admin.disconnect();
      connected = false;
    },
    /** One sample, for tests. */
    sample,
  };
}

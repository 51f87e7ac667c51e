import { AppError, ensureTopics } from '@kaudit/service-kit';
import type { Kafka } from 'kafkajs';

/**
 * The detector's topics: events, alerts and dead letters as usual, and the compacted state changelog
 * with exactly as many partitions as the events topic, because the state of events partition p lives
 * in state partition p (changelog.ts restores it from there). A mismatch is a configuration error.
 */
export async function ensureDetectorTopics(
  kafka: Kafka,
  topics: { eventsTopic: string; alertsTopic: string; dlqTopic: string; stateTopic: string },
): Promise<void> {
  await ensureTopics(kafka, [
    { topic: topics.eventsTopic },
    { topic: topics.alertsTopic },
    { topic: topics.dlqTopic },
  ]);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const count = async (topic: string) =>
      (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions.length ?? 0;
    const events = await count(topics.eventsTopic);
    await ensureTopics(kafka, [
      {
        topic: topics.stateTopic,
        numPartitions: events,
        configEntries: [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'max.message.bytes', value: String(8 * 1024 * 1024) },
        ],
      },
    ]);
    const state = await count(topics.stateTopic);
    if (state !== events) {
      throw new AppError(
        'KAUDIT_ERR_CONFIG',
        `state topic ${topics.stateTopic} has ${state} partitions but ${topics.eventsTopic} has ${events}: they must match (state of events partition p lives in state partition p)`,
      );
    }
  } finally {
    await admin.disconnect();
  }
}

import { AppError, ensureTopics } from '@kaudit/service-kit';
import { type Admin, ConfigResourceTypes, type Kafka } from 'kafkajs';

/** What the state topic is created with: room for the largest identity records, and big sends. */
export const STATE_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/**
 * The detector's topics: events, alerts and dead letters as usual, and the compacted state changelog
 * with exactly as many partitions as the events topic, because the state of events partition p lives
 * in state partition p (changelog.ts restores it from there). A mismatch is a configuration error.
 * Returns the state topic's max.message.bytes, which bounds the detector's state sends (transaction.ts):
 * a topic created by an operator beforehand may have the broker's default (1 MiB) instead of ours.
 */
export async function ensureDetectorTopics(
  kafka: Kafka,
  topics: { eventsTopic: string; alertsTopic: string; dlqTopic: string; stateTopic: string },
): Promise<{ stateMaxMessageBytes: number }> {
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
          { name: 'max.message.bytes', value: String(STATE_MAX_MESSAGE_BYTES) },
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
    return { stateMaxMessageBytes: await maxMessageBytes(admin, topics.stateTopic) };
  } finally {
    await admin.disconnect();
  }
}

/** A topic's max.message.bytes; the broker's default (1 MiB) when it cannot be read (no DescribeConfigs ACL). */
async function maxMessageBytes(admin: Admin, topic: string): Promise<number> {
  const fallback = 1024 * 1024;
  try {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['max.message.bytes'] }],
    });
    const entry = described.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes');
    return Number(entry?.configValue) || fallback;
  } catch {
    return fallback;
  }
}

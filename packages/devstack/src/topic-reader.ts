import { readToEnd } from '@kaudit/service-kit';
import type { Kafka } from 'kafkajs';

export interface TopicMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

/**
 * Every message on the given topics up to their end as of the call (each partition's high watermark
 * then), read with a throw-away consumer group (service-kit readToEnd, transactional topics included).
 */
export async function readTopics(
  kafka: Kafka,
  topics: readonly string[],
  options: { groupId: string; timeoutMs?: number },
): Promise<TopicMessage[]> {
  const messages: TopicMessage[] = [];
  await readToEnd({
    kafka,
    topics,
    groupId: options.groupId,
    timeoutMs: options.timeoutMs ?? 60_000,
    onMessage: (message, topic, partition) =>
      messages.push({ topic, partition, offset: message.offset, key: message.key, value: message.value }),
  });
  return messages;
}

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
 * then), read with a throw-away consumer group. Transactional topics end in control records that are
 * never delivered as messages, so progress is tracked from the consumer's batch events, which include
 * them.
 */
export async function readTopics(
  kafka: Kafka,
  topics: readonly string[],
  options: { groupId: string; timeoutMs?: number },
): Promise<TopicMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<string, number>();
  try {
    for (const topic of topics) {
      for (const partition of await admin.fetchTopicOffsets(topic)) {
        if (Number(partition.high) > Number(partition.low)) {
          ends.set(`${topic}/${partition.partition}`, Number(partition.high));
        }
      }
    }
  } finally {
    await admin.disconnect();
  }
  const messages: TopicMessage[] = [];
  if (ends.size === 0) return messages;

  const consumer = kafka.consumer({ groupId: options.groupId });
  const reached = new Map<string, number>();
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const check = () => {
    for (const [key, end] of ends) if ((reached.get(key) ?? 0) < end) return;
    done();
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const key = `${payload.topic}/${payload.partition}`;
    const next = Number(payload.lastOffset) + 1;
    if (next > (reached.get(key) ?? 0)) reached.set(key, next);
    check();
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const key = `${topic}/${partition}`;
        if (Number(message.offset) >= (ends.get(key) ?? 0)) return;
        messages.push({ topic, partition, offset: message.offset, key: message.key, value: message.value });
      },
    });
    const timeoutMs = options.timeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      finished,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          const behind = [...ends].filter(([key, end]) => (reached.get(key) ?? 0) < end).map(([key]) => key);
          reject(
            new Error(
              `reading ${topics.join(', ')}: not at the end after ${timeoutMs} ms (${behind.join(', ')})`,
            ),
          );
        }, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

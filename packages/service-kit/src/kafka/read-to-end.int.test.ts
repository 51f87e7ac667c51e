import { stackEnv, uniqueName, waitFor } from '@kaudit/testkit';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { consumerLag } from './lag';
import { readToEnd } from './read-to-end';

const { kafkaBrokers } = stackEnv();
const kafka = new Kafka({ clientId: 'read-to-end-test', brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
const logger = pino({ level: 'silent' });

async function topicWith(partitions: number): Promise<string> {
  const topic = uniqueName('read-to-end');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
  return topic;
}

describe('service-kit > kafka > read-to-end (integration)', () => {
  it('reads a transactional topic to the end it had, control records and wanted partitions only', async () => {
    const topic = await topicWith(2);
    const producer = kafka.producer({
      transactionalId: uniqueName('rte-tx'),
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    const tx = await producer.transaction();
    await tx.send({
      topic,
      messages: [0, 1, 2].map((i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 2 })),
    });
    await tx.commit();
    // The topic now ends in transaction markers, which no consumer ever sees as messages.
    const seen: string[] = [];
    await readToEnd({
      kafka,
      topics: [topic],
      groupId: uniqueName('rte-group'),
      wants: (_topic, partition) => partition === 0,
      onMessage: (message, _topic, partition) => seen.push(`${partition}:${String(message.value)}`),
      timeoutMs: 60_000,
      deleteGroup: { logger },
    });
    await producer.disconnect();
    expect(seen).toEqual(['0:v0', '0:v2']);
  });

  it('returns at once on an empty topic, and tails past the end when asked', async () => {
    const topic = await topicWith(1);
    const nothing = await readToEnd({
      kafka,
      topics: [topic],
      groupId: uniqueName('rte-group'),
      onMessage: () => {
        throw new Error('no message expected');
      },
      timeoutMs: 60_000,
    });
    expect(nothing.consumer).toBeDefined();

    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'before' }] });
    const seen: string[] = [];
    const { consumer } = await readToEnd({
      kafka,
      topics: [topic],
      groupId: uniqueName('rte-group'),
      tail: true,
      onMessage: (message) => seen.push(String(message.value)),
      timeoutMs: 60_000,
    });
    expect(seen).toEqual(['before']);
    await producer.send({ topic, messages: [{ value: 'after' }] });
    await waitFor('the tailed message', async () => (seen.includes('after') ? true : undefined), 60_000);
    await consumer.disconnect();
    await producer.disconnect();
  });

  it('times out naming the partitions still behind', async () => {
    const topic = await topicWith(1);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'x' }] });
    await producer.disconnect();
    await expect(
      readToEnd({
        kafka,
        topics: [topic],
        groupId: uniqueName('rte-group'),
        onMessage: () => {},
        timeoutMs: 1,
      }),
    ).rejects.toThrow(`${topic}/0`);
  });

  it('counts consumer lag from the low watermark when the group has committed nothing', async () => {
    const topic = await topicWith(1);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'a' }, { value: 'b' }] });
    await producer.disconnect();
    expect(await consumerLag(kafka, uniqueName('rte-idle-group'), topic)).toBe(2);
  });
});

import { ensureTopics } from '@kaudit/service-kit';
import { stackEnv, uniqueName } from '@kaudit/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { ensureDetectorTopics, STATE_MAX_MESSAGE_BYTES } from './topics';

describe('detector > topics (real Kafka)', () => {
  const kafka = new Kafka({ brokers: stackEnv().kafkaBrokers, logLevel: logLevel.NOTHING });
  const topicsNamed = (prefix: string) => ({
    eventsTopic: `${prefix}-events`,
    alertsTopic: `${prefix}-alerts`,
    dlqTopic: `${prefix}-dlq`,
    stateTopic: `${prefix}-state`,
  });

  it('creates the state topic with room for large sends and reports it', async () => {
    const topics = topicsNamed(uniqueName('topics-new'));
    await expect(ensureDetectorTopics(kafka, topics)).resolves.toEqual({
      stateMaxMessageBytes: STATE_MAX_MESSAGE_BYTES,
    });
  });

  it("reports a state topic's own max.message.bytes when an operator made it beforehand", async () => {
    const topics = topicsNamed(uniqueName('topics-made'));
    await ensureTopics(kafka, [
      { topic: topics.eventsTopic, numPartitions: 2 },
      {
        topic: topics.stateTopic,
        numPartitions: 2,
        configEntries: [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'max.message.bytes', value: '1048588' },
        ],
      },
    ]);
    await expect(ensureDetectorTopics(kafka, topics)).resolves.toEqual({ stateMaxMessageBytes: 1048588 });
  });
});

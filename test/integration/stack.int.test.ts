import { Client } from '@elastic/elasticsearch';
import { stackEnv, uniqueName } from '@kaudit/testkit';
import { Kafka, logLevel } from 'kafkajs';

// Proves the stack is real: these fail when Kafka or Elasticsearch is not running
// (KAUDIT_STACK_AUTOSTART=false pnpm test:integration with the stack down).
const { kafkaBrokers, esNode } = stackEnv();

describe('stack > kafka', () => {
  const kafka = new Kafka({ clientId: 'stack-test', brokers: kafkaBrokers, logLevel: logLevel.NOTHING });

  it('round-trips a message: produce, consume, commit', async () => {
    const topic = uniqueName('stack-roundtrip');
    const groupId = uniqueName('stack-group');
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });

    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    const [ack] = await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'hello kaudit' }] });
    expect(ack?.errorCode).toBe(0);
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received = await new Promise<{ key: string; value: string; offset: string }>((resolve) => {
      void consumer.run({
        autoCommit: false,
        eachMessage: async ({ message, partition }) => {
          await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
          resolve({ key: String(message.key), value: String(message.value), offset: message.offset });
        },
      });
    });
    await consumer.disconnect();
    expect(received).toEqual({ key: 'k', value: 'hello kaudit', offset: '0' });

    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    expect(committed?.partitions).toEqual([expect.objectContaining({ partition: 0, offset: '1' })]);
    await admin.deleteTopics({ topics: [topic] });
    await admin.disconnect();
  });
});

describe('stack > elasticsearch', () => {
  const client = new Client({ node: esNode });
  afterAll(() => client.close());

  it('round-trips a document: index, refresh, search', async () => {
    const index = uniqueName('stack-roundtrip');
    await client.index({
      index,
      id: 'e1',
      document: { user: { name: 'alice' }, verb: 'get' },
      refresh: true,
    });
    const result = await client.search<{ user: { name: string } }>({
      index,
      query: { term: { 'user.name.keyword': 'alice' } },
    });
    expect(result.hits.hits.map((hit) => [hit._id, hit._source?.user.name])).toEqual([['e1', 'alice']]);
    await client.indices.delete({ index });
  });

  it('has data streams with a lifecycle (the integ-test distribution keeps them)', async () => {
    const name = uniqueName('stack').toLowerCase();
    await client.indices.putIndexTemplate({
      name,
      index_patterns: [`logs-${name}-*`],
      data_stream: {},
      priority: 500,
      template: {
        settings: { number_of_replicas: 0 },
        lifecycle: { data_retention: '7d' },
        mappings: { properties: { '@timestamp': { type: 'date' } } },
      },
    });
    await client.index({
      index: `logs-${name}-default`,
      document: { '@timestamp': '2026-01-01T00:00:00Z' },
      refresh: true,
    });
    const resolved = await client.indices.resolveIndex({ name: `logs-${name}-*` });
    expect(resolved.data_streams.map((ds) => ds.name)).toEqual([`logs-${name}-default`]);
    const template = await client.indices.getIndexTemplate({ name });
    expect(template.index_templates[0]?.index_template.template?.lifecycle?.data_retention).toBe('7d');
    // No cleanup: the integ-test distribution has no DELETE _data_stream API, and `stack:up` starts
    // from fresh data anyway; the unique name keeps suites apart.
  });
});

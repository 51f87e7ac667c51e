import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeadLetterSchema, EnvelopeSchema } from '@kaudit/audit-schema';
import { createKafka, ensureTopics } from '@kaudit/service-kit';
import {
  plantedSecrets,
  secureKafkaEnv,
  secureKafkaStack,
  sourceFixture,
  stackEnv,
  uniqueName,
  waitFor,
} from '@kaudit/testkit';
import { capturingLogger, closedPort, insecureSinkEnv, readTopic } from '../test/helpers';
import { EVENTHUB_PREFIX, loadSinkConfig } from './config';
import { type RunningSink, startSink } from './service';

/**
 * The AKS bridge against the test stack's SASL_SSL listener (SASL/PLAIN over TLS, as Event Hubs'
 * Kafka endpoint speaks it) standing in for the hub: nothing committed while kaudit's Kafka cannot
 * take the events, every event once on the topic with its cluster after, the hub's offsets committed
 * to the end, planted Secret values nowhere, a wrong connection string refused at start.
 */
const { kafkaBrokers } = stackEnv();
const CLUSTER = 'fallback-aks';

const { logger, lines: logLines } = capturingLogger();

/** The first record of a hub message, its resourceId gone (so the fallback cluster applies), a new auditID. */
function withoutResourceId(message: string): string {
  const record = (JSON.parse(message) as { records: Array<Record<string, unknown>> }).records[0]!;
  const { resourceId: _id, ...rest } = record;
  const properties = rest.properties as { log: string };
  const event = { ...JSON.parse(properties.log), auditID: 'b1d9c7e0-0000-4000-8000-00000000f00d' };
  return JSON.stringify({
    records: [{ ...rest, properties: { ...properties, log: JSON.stringify(event) } }],
  });
}

describe('sink > Event Hubs bridge (real Kafka, SASL_SSL standing in for Event Hubs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-bridge-'));
  const hubTopic = uniqueName('it-hub');
  const groupId = uniqueName('it-hub-group');
  const eventsTopic = uniqueName('it-bridge-events');
  const dlqTopic = uniqueName('it-bridge-dlq');
  const kafka = createKafka({ clientId: 'sink-bridge-test', brokers: kafkaBrokers, logger });
  const stack = secureKafkaStack();
  const plain = secureKafkaEnv(stack, 'sasl-ssl', 'plain');
  const hubEnv = (overrides: Record<string, string> = {}) => {
    const env: Record<string, string> = {
      SINK_EVENTHUB_BROKERS: plain.brokers.join(','),
      SINK_EVENTHUB_TOPIC: hubTopic,
      SINK_EVENTHUB_GROUP_ID: groupId,
    };
    for (const [name, value] of Object.entries({ ...plain.env, ...overrides }))
      env[`${EVENTHUB_PREFIX}${name}`] = value;
    return env;
  };
  const sinkConfig = (brokers: string, spool: string, overrides: Record<string, string> = {}) =>
    loadSinkConfig({
      ...insecureSinkEnv({ brokers, eventsTopic, dlqTopic, spoolDir: join(dir, spool), cluster: CLUSTER }),
      ...hubEnv(overrides),
    });
  const sinks: RunningSink[] = [];
  const start = async (config: ReturnType<typeof loadSinkConfig>) => {
    const sink = await startSink(config, logger);
    sinks.push(sink);
    return sink;
  };
  const committedOffsets = async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [topic] = await admin.fetchOffsets({ groupId, topics: [hubTopic] });
      return topic!.partitions.map((p) => p.offset).sort();
    } finally {
      await admin.disconnect();
    }
  };
  const hubMessages = [
    sourceFixture('aks-event-hubs.json').toString(),
    withoutResourceId(sourceFixture('aks-event-hubs.json').toString()),
    '{"records":[{"properties":{"log":"{not json MKbridgeBroken01"}}]}',
  ];

  beforeAll(async () => {
    await ensureTopics(kafka, [
      { topic: hubTopic, numPartitions: 1 },
      { topic: eventsTopic, numPartitions: 3 },
      { topic: dlqTopic, numPartitions: 1 },
    ]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: hubTopic, messages: hubMessages.map((value) => ({ value })) });
    await producer.disconnect();
  });

  afterAll(async () => {
    for (const sink of sinks) await sink.stop().catch(() => undefined);
  });

  it('refuses a wrong connection string at start', async () => {
    writeFileSync(join(dir, 'wrong'), 'Endpoint=sb://wrong/;SharedAccessKey=forged\n');
    await expect(
      start(
        sinkConfig(kafkaBrokers.join(','), 'spool-wrong', { KAFKA_SASL_PASSWORD_FILE: join(dir, 'wrong') }),
      ),
    ).rejects.toThrow(/SINK_EVENTHUB_KAFKA_SASL|refused|authentication/i);
  });

  it('commits nothing while kaudit Kafka cannot take the events', async () => {
    const down = await start(sinkConfig(`127.0.0.1:${await closedPort()}`, 'spool-down'));
    const retries = async () =>
      (await down.metrics.registry.getSingleMetric('kaudit_sink_errors_total')?.get())?.values.find(
        (v) => v.labels.stage === 'bridge',
      )?.value ?? 0;
    await waitFor('two failed produce attempts', async () => ((await retries()) >= 2 ? true : undefined));
    expect(await committedOffsets()).toEqual(['-1']);
    await down.stop();
    sinks.splice(sinks.indexOf(down), 1);
    expect(await committedOffsets()).toEqual(['-1']);
  });

  it('with Kafka back: every event once with its cluster, offsets committed to the end, no secret anywhere', async () => {
    const sink = await start(sinkConfig(kafkaBrokers.join(','), 'spool-up'));
    await waitFor(
      'the hub batch committed',
      async () => (sink.bridge!.committed() >= hubMessages.length ? true : undefined),
      60_000,
    );
    expect(await committedOffsets()).toEqual([String(hubMessages.length)]);
    const events = (await readTopic(kafka, eventsTopic)).map((m) =>
      EnvelopeSchema.parse(JSON.parse(m.value)),
    );
    expect(events.map((e) => `${e.cluster}/${e.event.verb}`).sort()).toEqual([
      `${CLUSTER}/create`,
      'prod-aks-1/create',
      'prod-aks-1/get',
      'prod-aks-1/list',
    ]);
    expect(new Set(events.map((e) => `${e.cluster}/${e.event.auditID}`)).size).toBe(4);
    const dead = (await readTopic(kafka, dlqTopic)).map((m) => DeadLetterSchema.parse(JSON.parse(m.value)));
    expect(dead.map((d) => d.reason)).toEqual([expect.stringContaining('properties.log is not valid JSON')]);
    const planted = plantedSecrets(hubMessages.join('\n'));
    expect(planted).toEqual(expect.arrayContaining(['MKbridgeBroken01']));
    const everything = [
      ...events.map((e) => JSON.stringify(e)),
      ...dead.map((d) => JSON.stringify(d)),
      ...logLines,
    ].join('\n');
    for (const secret of planted) expect(everything).not.toContain(secret);
  });
});

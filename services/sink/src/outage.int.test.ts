import { appendFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, EnvelopeSchema } from '@kaudit/audit-schema';
import { createKafka, createLogger, ensureTopics } from '@kaudit/service-kit';
import { buildEvent, stackEnv, uniqueName, waitFor } from '@kaudit/testkit';
import { closedPort, insecureSinkEnv, postAudit, readTopic } from '../test/helpers';
import { loadSinkConfig } from './config';
import { type RunningSink, startSink } from './service';

/**
 * Kafka unavailable, then back, without stopping the shared broker: a sink whose KAFKA_BROKERS is a
 * port nobody listens on stands in for "Kafka down"; the spool directory is shared between the sink
 * instances, as it would be across restarts of one pod.
 */
const { kafkaBrokers } = stackEnv();
const logger = createLogger({ service: 'sink-outage-test', level: 'silent' });

describe('sink > Kafka outage (real Kafka)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-outage-'));
  const spoolDir = join(dir, 'spool');
  const eventsTopic = uniqueName('it-sink-outage');
  const dlqTopic = uniqueName('it-sink-outage-dlq');
  const kafka = createKafka({ clientId: 'sink-outage-test', brokers: kafkaBrokers, logger });
  const running: RunningSink[] = [];
  let sequence = 0;

  const start = async (brokers: string, waitConnected: boolean) => {
    const config = loadSinkConfig(
      insecureSinkEnv({ brokers, eventsTopic, dlqTopic, spoolDir, cluster: 'outage' }),
    );
    const sink = await startSink(config, logger);
    running.push(sink);
    if (waitConnected)
      await waitFor('the producer to connect', async () => sink.sender.isConnected() || undefined);
    return sink;
  };

  /** Posts `count` batches of 50 numbered events by one identity; returns the events answered with 2xx. */
  const send = async (sink: RunningSink, count: number): Promise<AuditEvent[]> => {
    const acked: AuditEvent[] = [];
    for (let b = 0; b < count; b++) {
      const events = Array.from({ length: 50 }, () =>
        buildEvent({ annotations: { seq: String(++sequence) } }),
      );
      const answer = await postAudit({
        port: sink.port,
        body: JSON.stringify({ kind: 'EventList', items: events }),
      });
      expect(answer.status).toBe(200);
      if (answer.status >= 200 && answer.status <= 206) acked.push(...events);
    }
    return acked;
  };

  const deliveries = async (sink: RunningSink, to: 'kafka' | 'spool') => {
    const metric = await sink.metrics.deliveries.get();
    return metric.values.find((v) => v.labels.to === to)?.value ?? 0;
  };

  beforeAll(async () => {
    await ensureTopics(kafka, [{ topic: eventsTopic, numPartitions: 3 }, { topic: dlqTopic }]);
  });

  afterAll(async () => {
    for (const sink of running) await sink.stop().catch(() => undefined);
  });

  it('acknowledges while Kafka is down, survives restarts and a torn write, and delivers everything in order', async () => {
    // 1. Kafka up: straight through.
    const up = await start(kafkaBrokers.join(','), true);
    const acked = await send(up, 3);
    expect(await deliveries(up, 'kafka')).toBe(3);
    await up.stop();

    // 2. Kafka down mid-stream: the sink keeps answering 2xx from the fsync'd spool.
    const down = `127.0.0.1:${await closedPort()}`;
    const first = await start(down, false);
    acked.push(...(await send(first, 3)));
    expect(await deliveries(first, 'spool')).toBe(3);
    expect(first.spool.usedBytes()).toBeGreaterThan(0);
    expect((await readTopic(kafka, eventsTopic)).length).toBe(150);
    await first.stop();

    // 3. Restarted while Kafka is still down: the spool is still there and grows behind what it held.
    const second = await start(down, false);
    expect(second.spool.isEmpty()).toBe(false);
    acked.push(...(await send(second, 2)));
    await second.stop();
    // A crash in the middle of a write leaves a torn record that was never acknowledged.
    const segments = readdirSync(spoolDir)
      .filter((f) => f.endsWith('.log'))
      .sort();
    appendFileSync(join(spoolDir, segments.at(-1)!), Buffer.from([0x4b, 0x41, 0x55, 0x44, 0, 0, 1]));

    // 4. Kafka back: the spool drains oldest first; requests meanwhile queue behind it.
    const back = await start(kafkaBrokers.join(','), true);
    acked.push(...(await send(back, 1)));
    await waitFor('the spool to drain', async () => back.spool.isEmpty() || undefined, 60_000);

    const onTopic = (await readTopic(kafka, eventsTopic)).map((m) => ({
      key: m.key,
      partition: m.partition,
      event: EnvelopeSchema.parse(JSON.parse(m.value)).event,
    }));
    const delivered = new Set(onTopic.map((m) => m.event.auditID));
    const missing = acked.filter((e) => !delivered.has(e.auditID)).map((e) => e.annotations?.seq);
    expect(missing).toEqual([]);
    expect(acked).toHaveLength(450);
    // One identity, one key, one partition: its events in the order they were acknowledged.
    expect(new Set(onTopic.map((m) => m.key))).toEqual(new Set(['outage/alice@example.com']));
    const order = onTopic.map((m) => Number(m.event.annotations?.seq));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });
});

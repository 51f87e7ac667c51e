import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type AuditEvent, EnvelopeSchema } from '@kaudit/audit-schema';
import { createKafka, createLogger, ensureTopics } from '@kaudit/service-kit';
import { buildEvent, freeLoopbackPort, uniqueName, waitFor } from '@kaudit/testkit';
import { insecureSinkEnv, postAudit, readTopic } from '../test/helpers';
import { loadSinkConfig } from './config';
import { type RunningSink, startSink } from './service';

/**
 * A real broker stopped under a connected producer with requests in flight, then started again with
 * its data (issue 3: "Kafka stopped mid-stream, then restarted; also the sink restarted while Kafka is
 * down"). The shared broker must never stop, so this suite runs a private one (test/stack/stack.sh
 * with KAUDIT_STACK_ONLY=kafka) on its own ports and directory. Clients keep several batches in
 * flight the whole time; only events answered 2xx count, and each of them must be on the topic.
 */
const execFileAsync = promisify(execFile);
const stackScript = join(__dirname, '../../../test/stack/stack.sh');
const logger = createLogger({
  service: 'sink-kafka-restart-test',
  level: (process.env.TEST_LOG_LEVEL as 'silent' | undefined) ?? 'silent',
});

describe('sink > Kafka broker restart (private real Kafka)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-kafka-restart-'));
  const spoolDir = join(dir, 'spool');
  const eventsTopic = uniqueName('it-sink-restart');
  const dlqTopic = uniqueName('it-sink-restart-dlq');
  let stackEnvVars: NodeJS.ProcessEnv = {};
  let brokers = '';
  const sinks: RunningSink[] = [];

  // Async on purpose: the event loop (and the requests in flight) keeps running while the broker stops.
  const stack = async (command: 'up' | 'down', keepData = false) => {
    await execFileAsync('bash', [stackScript, command], {
      env: { ...stackEnvVars, ...(keepData ? { KAUDIT_STACK_KEEP_DATA: 'true' } : {}) },
      timeout: 120_000,
    });
  };

  const startOne = async () => {
    const config = loadSinkConfig(
      insecureSinkEnv({ brokers, eventsTopic, dlqTopic, spoolDir, cluster: 'restart' }),
    );
    const sink = await startSink(config, logger);
    sinks.push(sink);
    return sink;
  };

  const deliveries = async (sink: RunningSink, to: 'kafka' | 'spool') => {
    const metric = await sink.metrics.deliveries.get();
    return metric.values.find((v) => v.labels.to === to)?.value ?? 0;
  };

  const sent = async (sink: RunningSink) => {
    const metric = await sink.metrics.sent.get();
    return metric.values.find((v) => v.labels.topic === eventsTopic)?.value ?? 0;
  };

  beforeAll(async () => {
    const [kafkaPort, controllerPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
    stackEnvVars = {
      ...process.env,
      KAUDIT_STACK_ONLY: 'kafka',
      KAUDIT_STACK_DIR: join(dir, 'stack'),
      KAFKA_PORT: String(kafkaPort),
      KAFKA_CONTROLLER_PORT: String(controllerPort),
      KAFKA_HEAP: '256m',
    };
    brokers = `127.0.0.1:${kafkaPort}`;
    await stack('up');
    const kafka = createKafka({ clientId: 'sink-restart-test', brokers: [brokers], logger });
    await ensureTopics(kafka, [{ topic: eventsTopic, numPartitions: 3 }, { topic: dlqTopic }]);
  }, 150_000);

  afterAll(async () => {
    for (const sink of sinks) await sink.stop().catch(() => undefined);
    await stack('down').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('every event answered 2xx is on the topic after the broker stops mid-stream and the sink restarts', async () => {
    let current = await startOne();
    await waitFor('the producer to connect', async () => current.sender.isConnected() || undefined);

    const acked: AuditEvent[] = [];
    const statuses = new Map<string, number>();
    let sending = true;
    let pending = 0;
    // Four clients, one identity each (so several partitions), one batch in flight each at all times.
    const client = async (n: number) => {
      while (sending) {
        const events = Array.from({ length: 25 }, () =>
          buildEvent({ user: { username: `client-${n}@example.com`, groups: [] } }),
        );
        pending += 1;
        const answer = await postAudit({
          port: current.port,
          body: JSON.stringify({ kind: 'EventList', items: events }),
        })
          .catch((err: NodeJS.ErrnoException) => ({ status: err.code ?? 'error' }))
          .finally(() => {
            pending -= 1;
          });
        const status = String(answer.status);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (typeof answer.status === 'number' && answer.status >= 200 && answer.status <= 206)
          acked.push(...events);
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const clients = [1, 2, 3, 4].map(client);
    try {
      // 1. Broker up: straight through to Kafka.
      await waitFor('direct deliveries', async () => (await deliveries(current, 'kafka')) >= 20 || undefined);

      // 2. Broker stopped (SIGTERM) under the connected producer while requests are in flight.
      expect(pending).toBeGreaterThan(0);
      await stack('down');
      const first = current;
      await waitFor('spooled deliveries', async () => (await deliveries(first, 'spool')) >= 8 || undefined);

      // 3. The sink restarts while the broker is down; the new one takes over the spool.
      await first.stop();
      current = await startOne();
      expect(current.spool.isEmpty()).toBe(false);
      const second = current;
      await waitFor('spooled deliveries after the restart', async () =>
        (await deliveries(second, 'spool')) >= 8 ? true : undefined,
      );

      // 4. Broker back with its data: the drainer sends the spool while clients keep sending.
      await stack('up', true);
      await waitFor(
        'the drainer to send the spool',
        async () => ((await sent(second)) >= 400 ? true : undefined),
        60_000,
      );
    } finally {
      sending = false;
      await Promise.all(clients);
    }
    await waitFor('the spool to drain', async () => current.spool.isEmpty() || undefined, 60_000);

    const kafka = createKafka({ clientId: 'sink-restart-reader', brokers: [brokers], logger });
    const delivered = new Set(
      (await readTopic(kafka, eventsTopic)).map(
        (m) => EnvelopeSchema.parse(JSON.parse(m.value)).event.auditID,
      ),
    );
    const missing = acked.filter((e) => !delivered.has(e.auditID)).map((e) => e.auditID);
    expect({ missing: missing.length, statuses: Object.fromEntries(statuses) }).toEqual({
      missing: 0,
      statuses: expect.any(Object),
    });
    expect(acked.length).toBeGreaterThan(0);
  }, 120_000);
});

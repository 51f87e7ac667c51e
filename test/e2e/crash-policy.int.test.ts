import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createKafka,
  createLiveness,
  createLogger,
  createStartup,
  type Liveness,
  registerShutdown,
  type ShutdownStep,
  startOpsServer,
  suppressKafkajsTimeoutWarning,
} from '@kaudit/service-kit';
import { consumerFault, deferred, stackEnv, uniqueName, waitFor } from '@kaudit/testkit';
import type { Kafka } from 'kafkajs';
import { createAlerter } from '../../services/alerter/src/alerter';
import { loadAlerterConfig } from '../../services/alerter/src/config';
import { configuredDestinations } from '../../services/alerter/src/destinations';
import { createAlerterMetrics } from '../../services/alerter/src/metrics';
import { loadDetectorConfig } from '../../services/detector/src/config';
import { createDetector } from '../../services/detector/src/detector';
import { createDetectorMetrics } from '../../services/detector/src/metrics';
import { loadIndexerConfig } from '../../services/indexer/src/config';
import { startIndexerService } from '../../services/indexer/src/service';
import { loadSinkConfig } from '../../services/sink/src/config';
import { startSink } from '../../services/sink/src/service';
import { insecureSinkEnv } from '../../services/sink/test/helpers';

/**
 * The one crash policy (service-kit liveness.ts), against the real Kafka of the test stack: each
 * service is wired the way its main.ts wires it (createLiveness -> the service, the ops server and
 * registerShutdown), its consumer is then killed for good (a non-retriable error: kafkajs crashes it
 * with restart: false), and the service must report dead on /healthz and exit 1 after its shutdown
 * steps. The exit is injected, and the ops server left out of the steps, so both can be asserted.
 */
suppressKafkajsTimeoutWarning();
const logger = createLogger({ service: 'crash-policy-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const { kafkaBrokers, esNode } = stackEnv();
const dir = mkdtempSync(join(tmpdir(), 'kaudit-crash-policy-'));
const plain = createKafka({ clientId: 'crash-policy-test', brokers: kafkaBrokers, logger });
const producer = plain.producer();
const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => producer.connect());
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await producer.disconnect();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** Registers the steps like main.ts does; resolves with the exit code the policy chose. */
function supervise(liveness: Liveness, steps: ShutdownStep[]): Promise<number> {
  const exited = deferred<number>();
  registerShutdown({ logger, liveness, steps, exit: exited.resolve });
  return exited.promise;
}

async function healthz(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
}

function names(prefix: string) {
  const run = uniqueName(prefix);
  return { events: `${run}.events`, alerts: `${run}.alerts`, dlq: `${run}.dlq`, run };
}

const startup = () => createStartup({ logger, timeoutMs: 60_000 });

describe('crash policy > a consumer killed for good makes /healthz fail and the process exit 1', () => {
  it('detector', async () => {
    const t = names('crash-detector');
    const config = loadDetectorConfig({
      KAFKA_BROKERS: kafkaBrokers.join(','),
      AUDIT_EVENTS_TOPIC: t.events,
      AUDIT_ALERTS_TOPIC: t.alerts,
      AUDIT_DLQ_TOPIC: t.dlq,
      DETECTOR_STATE_TOPIC: `${t.run}.state`,
      DETECTOR_GROUP_ID: t.run,
      DETECTOR_INSTANCE_ID: 'crash-0',
      DETECTOR_SESSION_TIMEOUT: '6s',
      DETECTOR_POLICY_FILE: join(__dirname, '../../policies/detection.yaml'),
    });
    const fault = consumerFault<Kafka>(createKafka({ clientId: t.run, brokers: kafkaBrokers, logger }));
    const liveness = createLiveness({ logger });
    const metrics = createDetectorMetrics();
    const detector = createDetector({
      kafka: fault.kafka,
      logger,
      metrics,
      policy: config.policy,
      startup: startup(),
      liveness,
      options: {
        eventsTopic: t.events,
        alertsTopic: t.alerts,
        dlqTopic: t.dlq,
        stateTopic: config.env.DETECTOR_STATE_TOPIC,
        groupId: t.run,
        instanceId: 'crash-0',
        idleFlushMs: 60_000,
        transactionTimeoutMs: 30_000,
        sessionTimeoutMs: 6000,
      },
    });
    const ops = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      registry: metrics.registry,
      isReady: detector.ready,
      liveness,
      logger,
    });
    cleanups.push(() => ops.close());
    const exit = supervise(liveness, [{ name: 'detector', run: () => detector.stop() }]);
    await detector.start();
    await waitFor('the detector to join its group', async () => detector.ready() || undefined, 60_000);
    expect(await healthz(ops.port)).toBe(200);

    fault.crash();
    await producer.send({ topic: t.events, messages: [{ key: 'k', value: '{}' }] });
    expect(await exit).toBe(1);
    expect(await healthz(ops.port)).toBe(503);
    expect(liveness.reason()).toMatch(/^events consumer crashed and will not be restarted/);
  }, 120_000);

  it('indexer', async () => {
    const t = names('crash-indexer');
    const config = loadIndexerConfig({
      KAFKA_BROKERS: kafkaBrokers.join(','),
      ES_NODE: esNode,
      AUDIT_EVENTS_TOPIC: t.events,
      AUDIT_ALERTS_TOPIC: t.alerts,
      AUDIT_DLQ_TOPIC: t.dlq,
      INDEXER_GROUP_ID: t.run,
      ES_DATA_STREAM_NAMESPACE: t.run.replace(/[^a-z0-9]/g, ''),
      ES_NUMBER_OF_REPLICAS: '0',
      INDEXER_PORT: '0',
      INDEXER_HOST: '127.0.0.1',
    });
    const fault = consumerFault<Kafka>(createKafka({ clientId: t.run, brokers: kafkaBrokers, logger }));
    const liveness = createLiveness({ logger });
    const service = await startIndexerService(config, logger, { liveness, kafka: fault.kafka });
    const ops = service.steps.find((step) => step.name === 'ops server')!;
    cleanups.push(() => ops.run());
    const exit = supervise(
      liveness,
      service.steps.filter((step) => step !== ops),
    );
    await waitFor('the indexer to be ready', async () => service.isReady() || undefined, 60_000);
    expect(await healthz(service.opsPort)).toBe(200);

    fault.crash();
    await producer.send({ topic: t.events, messages: [{ key: 'k', value: '{}' }] });
    expect(await exit).toBe(1);
    expect(await healthz(service.opsPort)).toBe(503);
  }, 120_000);

  it('alerter', async () => {
    const t = names('crash-alerter');
    const routingFile = join(dir, 'routing.yaml');
    writeFileSync(
      routingFile,
      'destinations:\n  slack: { type: slack, urlFrom: { env: SLACK_URL } }\nroutes:\n  - { name: all, destinations: [slack] }\n',
    );
    const config = loadAlerterConfig({
      KAFKA_BROKERS: kafkaBrokers.join(','),
      AUDIT_ALERTS_TOPIC: t.alerts,
      AUDIT_DLQ_TOPIC: t.dlq,
      ALERTER_DELIVERED_TOPIC: `${t.run}.delivered`,
      ALERTER_GROUP_ID: t.run,
      ALERTER_ROUTING_FILE: routingFile,
      SLACK_URL: 'http://127.0.0.1:9/never-called',
    });
    const fault = consumerFault<Kafka>(createKafka({ clientId: t.run, brokers: kafkaBrokers, logger }));
    const liveness = createLiveness({ logger });
    const metrics = createAlerterMetrics();
    const alerter = createAlerter({
      kafka: fault.kafka,
      logger,
      metrics,
      routing: config.routing,
      destinations: configuredDestinations(config),
      options: config.options,
      startup: startup(),
      liveness,
    });
    const ops = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      registry: metrics.registry,
      isReady: alerter.ready,
      liveness,
      logger,
    });
    cleanups.push(() => ops.close());
    const exit = supervise(liveness, [{ name: 'alerter', run: () => alerter.stop({ drainTimeoutMs: 100 }) }]);
    await alerter.start();
    await waitFor('the alerter to be ready', async () => alerter.ready() || undefined, 60_000);
    expect(await healthz(ops.port)).toBe(200);

    fault.crash();
    await producer.send({ topic: t.alerts, messages: [{ key: 'k', value: '{}' }] });
    expect(await exit).toBe(1);
    expect(await healthz(ops.port)).toBe(503);
  }, 120_000);

  it("sink: its listener closing under it is the sink's way to die (Kafka down is not: the spool covers it)", async () => {
    const t = names('crash-sink');
    const config = loadSinkConfig(
      insecureSinkEnv({
        brokers: kafkaBrokers.join(','),
        eventsTopic: t.events,
        dlqTopic: t.dlq,
        spoolDir: join(dir, 'spool'),
        cluster: 'crash',
      }),
    );
    const liveness = createLiveness({ logger });
    const sink = await startSink(config, logger, { liveness });
    const exit = supervise(liveness, sink.steps);
    expect((await fetch(`http://127.0.0.1:${sink.port}/healthz`)).status).toBe(200);

    sink.server.server.close();
    expect(await exit).toBe(1);
    expect(liveness.reason()).toBe('the HTTPS listener closed while the sink was running');
  }, 60_000);
});

describe('crash policy > the built service process', () => {
  it('detector: a consumer the broker refuses for good (session timeout above its maximum) logs why and exits 1', async () => {
    const t = names('crash-detector-process');
    const child = spawn(process.execPath, [join(__dirname, '../../services/detector/dist/main.js')], {
      env: {
        PATH: process.env.PATH ?? '',
        KAFKA_BROKERS: kafkaBrokers.join(','),
        AUDIT_EVENTS_TOPIC: t.events,
        AUDIT_ALERTS_TOPIC: t.alerts,
        AUDIT_DLQ_TOPIC: t.dlq,
        DETECTOR_STATE_TOPIC: `${t.run}.state`,
        DETECTOR_GROUP_ID: t.run,
        DETECTOR_INSTANCE_ID: 'crash-process-0',
        DETECTOR_PORT: '0',
        DETECTOR_POLICY_FILE: join(__dirname, '../../policies/detection.yaml'),
        // Above the broker's group.max.session.timeout.ms (30 min): the join fails with the
        // non-retriable INVALID_SESSION_TIMEOUT, so kafkajs crashes the consumer with restart: false.
        DETECTOR_SESSION_TIMEOUT: '31m',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const lines = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: string; component?: string; msg: string; code?: number });
    expect(code).toBe(1);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'fatal',
        component: 'liveness',
        msg: expect.stringMatching(/^dead: events consumer crashed and will not be restarted/),
      }),
    );
    expect(lines).toContainEqual(expect.objectContaining({ component: 'shutdown', msg: 'stopped', code: 1 }));
  }, 120_000);
});

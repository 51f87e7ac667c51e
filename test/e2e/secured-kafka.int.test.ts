import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { decodeAuditText, FindingSchema } from '@kaudit/audit-schema';
import { sendItems } from '@kaudit/cli';
import { latestRevisions } from '@kaudit/detection';
import { defaultRootDir, type Pipeline, readTopics, SERVICE_NAMES, startPipeline } from '@kaudit/devstack';
import { ensureDevCerts, secureKafkaEnv, secureKafkaStack, stackEnv, waitFor } from '@kaudit/testkit';
import { Kafka, logLevel } from 'kafkajs';

/**
 * Issue 11: the four services and the devstack's own clients (topics, the findings follower) over the
 * test stack's secured listeners — SASL_SSL with SCRAM-SHA-512, and SSL with client certificates — each
 * service its own process, as in production. Events go in at the sink and must come out in
 * Elasticsearch (sink produced, indexer consumed), findings on the alerts topic (detector consumed and
 * produced; read back over the same listener) and in the Slack stand-in (alerter consumed). The SASL
 * password is passed as KAFKA_SASL_PASSWORD, the riskier way, and no log line may contain it. A wrong
 * password and a wrong CA stop each service at start-up with one line naming the variable.
 */
const root = defaultRootDir;
const missing = SERVICE_NAMES.map((name) => `services/${name}/dist/main.js`).filter(
  (file) => !existsSync(join(root, file)),
);
const stack = secureKafkaStack();
const password = readFileSync(stack.saslPasswordFile, 'utf8').trim();
const { esNode } = stackEnv();
const es = new Client({ node: esNode });
const runsDir = join(root, '.kaudit', 'e2e');

/** The example week: its intrusion gives nine findings in the pipeline (examples/README.md). */
function traffic(): Array<Record<string, unknown>> {
  return decodeAuditText(readFileSync(join(root, 'examples/audit-week.jsonl'), 'utf8')).flatMap((item) =>
    item.ok ? [item.raw as Record<string, unknown>] : [],
  );
}

afterAll(() => es.close());

/** The suite's own client, made by hand from the variables (not by the code under test). */
function testClient(brokers: string[], env: Record<string, string>): Kafka {
  const read = (file: string | undefined) => (file ? readFileSync(file, 'utf8') : undefined);
  return new Kafka({
    clientId: 'secured-kafka-test',
    brokers,
    logLevel: logLevel.NOTHING,
    ssl: {
      ca: [read(env.KAFKA_SSL_CA_FILE)!],
      cert: read(env.KAFKA_SSL_CERT_FILE),
      key: read(env.KAFKA_SSL_KEY_FILE),
    },
    ...(env.KAFKA_SASL_MECHANISM
      ? {
          sasl: {
            mechanism: 'scram-sha-512' as const,
            username: env.KAFKA_SASL_USERNAME!,
            password: env.KAFKA_SASL_PASSWORD ?? read(env.KAFKA_SASL_PASSWORD_FILE)!.trim(),
          },
        }
      : {}),
  });
}

describe.each([
  {
    name: 'SASL_SSL SCRAM-SHA-512',
    protocol: 'SASL_SSL',
    transport: () => {
      const { brokers, env } = secureKafkaEnv(stack, 'sasl-ssl', 'scram-sha-512');
      const { KAFKA_SASL_PASSWORD_FILE: _file, ...rest } = env;
      return { brokers, env: { ...rest, KAFKA_SASL_PASSWORD: password } };
    },
  },
  { name: 'mTLS', protocol: 'SSL', transport: () => secureKafkaEnv(stack, 'mtls') },
])('e2e > secured kafka > $name', ({ name, protocol, transport }) => {
  const run = `sec${name.startsWith('m') ? 'm' : 's'}${Date.now().toString(36)}${process.pid.toString(36)}`;
  let pipeline: Pipeline;
  let sent: Array<Record<string, unknown>>;

  beforeAll(async () => {
    if (missing.length > 0) throw new Error(`run pnpm build first (missing ${missing.join(', ')})`);
    const { brokers, env } = transport();
    const topics = {
      events: `${run}.events`,
      alerts: `${run}.alerts`,
      dlq: `${run}.dlq`,
      detectorState: `${run}.detector-state`,
      alerterDelivered: `${run}.alerter-delivered`,
    };
    // Created up front: four services creating their topics at once on one broker can race (issue 11
    // item 1, fixed apart from this), and that is not what this suite is about.
    const admin = testClient(brokers, env).admin();
    await admin.connect();
    const compact = [{ name: 'cleanup.policy', value: 'compact' }];
    await admin
      .createTopics({
        waitForLeaders: true,
        topics: [
          { topic: topics.events, numPartitions: 3 },
          { topic: topics.alerts, numPartitions: 3 },
          { topic: topics.dlq, numPartitions: 1 },
          { topic: topics.detectorState, numPartitions: 3, configEntries: compact },
          { topic: topics.alerterDelivered, numPartitions: 3, configEntries: compact },
        ],
      })
      .finally(() => admin.disconnect());
    pipeline = await startPipeline({
      stateDir: join(runsDir, run),
      idPrefix: run,
      esNamespace: run,
      clusterName: 'secured',
      startStack: false,
      addresses: { kafkaBrokers: brokers, esNode, kafkaSecurityEnv: env },
      topics,
      ports: { sink: 0, detector: 0, indexer: 0, alerter: 0, slack: 0 },
      serviceEnv: { detector: { DETECTOR_IDLE_FLUSH: '2s' }, indexer: { INDEXER_FLUSH_INTERVAL_MS: '200' } },
      log: () => {},
    });
    sent = traffic();
    const summary = await sendItems(sent, {
      url: pipeline.urls.sink,
      cert: readFileSync(pipeline.certs.clientCert),
      key: readFileSync(pipeline.certs.clientKey),
      ca: readFileSync(pipeline.certs.caCert),
      retry: { initialDelayMs: 200 },
    });
    expect(summary).toMatchObject({ sent: sent.length, accepted: sent.length, rejected: 0 });
  }, 180_000);

  afterAll(() => pipeline?.stop(), 60_000);

  it('sink produces and indexer consumes: every event reaches Elasticsearch', async () => {
    const index = pipeline.dataStreams.events;
    const count = async () => {
      await es.indices.refresh({ index }).catch(() => undefined);
      return (await es.count({ index }).catch(() => ({ count: 0 }))).count;
    };
    await waitFor(
      'every event in Elasticsearch',
      async () => ((await count()) >= sent.length ? true : undefined),
      90_000,
    );
    expect(await count()).toBe(sent.length);
  });

  it('detector consumes and produces, alerter consumes: findings on the topic and in Slack', async () => {
    // The devstack's client, built by service-kit from the same variables as the services'.
    const kafka = new Kafka({
      clientId: run,
      brokers: pipeline.urls.kafka.split(','),
      ssl: pipeline.kafkaSecurity.ssl,
      ...(pipeline.kafkaSecurity.sasl ? { sasl: pipeline.kafkaSecurity.sasl } : {}),
      logLevel: logLevel.NOTHING,
    });
    const findings = await waitFor(
      'findings on the alerts topic',
      async () => {
        const messages = await readTopics(kafka, [pipeline.topics.alerts], {
          groupId: `${run}-r${Date.now()}`,
        });
        // A finding is reported early and updated by id (ADR 0010): count ids, not revisions.
        const reports = messages.map((m) => FindingSchema.parse(JSON.parse(String(m.value))));
        const latest = latestRevisions(reports);
        return latest.length >= 9 ? latest : undefined;
      },
      90_000,
    );
    expect(findings.length).toBeGreaterThanOrEqual(9);
    // One Slack message per finding id, however many revisions it had.
    await pipeline.slack.waitForMessages(findings.length, 60_000);
  });

  it('logs the protocol, never the password or the client key', () => {
    const logs = readdirSync(pipeline.logsDir).filter((file) => file.endsWith('.log'));
    expect(SERVICE_NAMES.filter((service) => !logs.includes(`${service}.log`))).toEqual([]);
    const key = readFileSync(stack.clientKeyFile, 'utf8').split('\n')[1]!;
    for (const file of logs) {
      const text = readFileSync(join(pipeline.logsDir, file), 'utf8');
      expect({ file, password: text.includes(password), key: text.includes(key) }).toEqual({
        file,
        password: false,
        key: false,
      });
    }
    expect(readFileSync(join(pipeline.logsDir, 'indexer.log'), 'utf8')).toContain(`"protocol":"${protocol}"`);
  });
});

describe('e2e > secured kafka > refused at start-up', () => {
  const dir = join(runsDir, `refused-${Date.now().toString(36)}${process.pid.toString(36)}`);
  const wrongPassword = `wrong-${Date.now().toString(36)}-password`;

  /** Enough of each service's environment to pass its own checks, so only Kafka can refuse it. */
  function serviceEnv(service: (typeof SERVICE_NAMES)[number]): Record<string, string> {
    const base = {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'info',
      AUDIT_EVENTS_TOPIC: `${dir}.e`.replace(/\W/g, ''),
    };
    switch (service) {
      case 'sink':
        return {
          ...base,
          SINK_INSECURE_DEV: 'true',
          SINK_PORT: '0',
          SINK_HOST: '127.0.0.1',
          SINK_SPOOL_DIR: join(dir, 'spool'),
        };
      case 'detector':
        return { ...base, DETECTOR_PORT: '0' };
      case 'indexer':
        return { ...base, INDEXER_PORT: '0', INDEXER_HOST: '127.0.0.1', ES_NODE: esNode };
      case 'alerter':
        return {
          ...base,
          ALERTER_PORT: '0',
          ALERTER_ROUTING_FILE: join(dir, 'routing.yaml'),
          SLACK_WEBHOOK_URL: 'http://127.0.0.1:9/never',
        };
    }
  }

  /** Runs a service to its exit; resolves with its code and everything it printed. */
  function runService(
    service: string,
    env: Record<string, string>,
  ): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [join(root, `services/${service}/dist/main.js`)], {
        cwd: root,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.once('error', reject);
      child.once('exit', (code) => resolve({ code, output }));
    });
  }

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'routing.yaml'),
      'destinations:\n  slack:\n    type: slack\n    urlFrom: { env: SLACK_WEBHOOK_URL }\nroutes:\n  - name: all\n    destinations: [slack]\n',
    );
  });

  const sasl = () => {
    const { brokers, env } = secureKafkaEnv(stack, 'sasl-ssl', 'scram-sha-512');
    const { KAFKA_SASL_PASSWORD_FILE: _file, ...rest } = env;
    return { KAFKA_BROKERS: brokers.join(','), ...rest, KAFKA_SASL_PASSWORD: wrongPassword };
  };
  const wrongCa = async () => {
    // A CA of its own: the broker's certificate does not lead to it.
    const other = await ensureDevCerts(join(dir, 'other-ca'));
    const { brokers, env } = secureKafkaEnv(stack, 'mtls');
    return { KAFKA_BROKERS: brokers.join(','), ...env, KAFKA_SSL_CA_FILE: other.caCert };
  };

  it.each([
    [
      'a wrong SCRAM password',
      async () => sasl(),
      /KAFKA_SASL_PASSWORD: the broker refused the SASL credentials/,
    ],
    [
      'a wrong CA',
      wrongCa,
      /KAFKA_SSL_CA_FILE: the broker's certificate is not signed by the CA in KAFKA_SSL_CA_FILE/,
    ],
  ])(
    '%s: every service exits 1 naming the variable, no stack trace, no password',
    async (_name, kafkaEnv, expected) => {
      const env = await kafkaEnv();
      const results = await Promise.all(
        SERVICE_NAMES.map(async (service) => ({
          service,
          ...(await runService(service, { ...serviceEnv(service), ...env })),
        })),
      );
      for (const { service, code, output } of results) {
        expect({ service, code, named: expected.test(output) }).toEqual({ service, code: 1, named: true });
        expect({
          service,
          stack: /\n\s+at .+:\d+:\d+/.test(output),
          leaked: output.includes(wrongPassword),
        }).toEqual({
          service,
          stack: false,
          leaked: false,
        });
      }
    },
  );
});

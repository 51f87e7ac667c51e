import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, type Envelope, type Finding, partitionKey } from '@kaudit/audit-schema';
import { createEngine, loadPolicyText } from '@kaudit/detection';
import { buildEvent, stackEnv, uniqueName, waitFor } from '@kaudit/testkit';
import { type Admin, Kafka, logLevel, type Producer } from 'kafkajs';

const root = join(__dirname, '../../..');
const PARTITIONS = 3;
const USERS = 120;
const FILLER = 30_000;
// Small windows and no lateness so the test's trailing events close every window; otherwise the default policy.
const POLICY = 'timezone: UTC\neventTime:\n  allowedLateness: 0s\ngrouping:\n  window: 1m\n';

const iso = (ms: number) => new Date(ms).toISOString();
const WARMUP = Date.parse('2026-01-01T10:00:00Z');
const DAY12 = Date.parse('2026-01-12T09:00:00Z');

function event(at: number, user: string, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return buildEvent({
    requestReceivedTimestamp: iso(at),
    stageTimestamp: iso(at),
    user: { username: user, groups: ['system:authenticated'] },
    ...overrides,
  });
}

const podList = {
  requestURI: '/api/v1/namespaces/default/pods',
  verb: 'list',
  objectRef: { resource: 'pods', namespace: 'default' },
};

/** Warm-up: every user seen from its own address. Then, after learning, every user reads a secret from a new one. */
function scenario() {
  const warmup: AuditEvent[] = [];
  for (let i = 0; i < USERS; i++)
    warmup.push(event(WARMUP + i * 1000, `user-${i}`, { ...podList, sourceIPs: [`203.0.113.${i % 250}`] }));
  // One "clock" identity per partition, so every partition's engine sees the same first event.
  const clocks = Array.from({ length: PARTITIONS }, (_, p) => `clock-${p}`);
  for (const clock of clocks) warmup.unshift(event(WARMUP - 1000, clock, podList));

  const day: AuditEvent[] = [];
  for (let i = 0; i < FILLER; i++) {
    const user = `user-${i % USERS}`;
    day.push(event(DAY12 + i * 200, user, { ...podList, sourceIPs: [`203.0.113.${(i % USERS) % 250}`] }));
  }
  for (let i = 0; i < USERS; i++) {
    day.push(event(DAY12 + 3_000_000 + i * 7_000, `user-${i}`, { sourceIPs: ['198.51.100.7'] }));
  }
  day.sort((a, b) => Date.parse(a.requestReceivedTimestamp) - Date.parse(b.requestReceivedTimestamp));
  // Trailing events an hour later on every partition move each partition's clock past every window.
  const trailing = clocks.map((clock) => event(DAY12 + 4 * 3_600_000, clock, podList));
  return { warmup, day, trailing, clocks };
}

describe('detector > kill and restart (real Kafka)', () => {
  const { kafkaBrokers } = stackEnv();
  const kafka = new Kafka({ clientId: 'detector-int', brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
  const topics = {
    events: uniqueName('det-events'),
    alerts: uniqueName('det-alerts'),
    dlq: uniqueName('det-dlq'),
    state: uniqueName('det-state'),
  };
  const groupId = uniqueName('det-group');
  let admin: Admin;
  let producer: Producer;
  const children: ChildProcess[] = [];
  let policyFile: string;

  beforeAll(async () => {
    execFileSync(
      process.execPath,
      [join(root, 'node_modules/typescript/bin/tsc'), '-b', 'services/detector'],
      { cwd: root, stdio: 'inherit' },
    );
    const dir = mkdtempSync(join(tmpdir(), 'detector-int-'));
    policyFile = join(dir, 'detection.yaml');
    writeFileSync(policyFile, POLICY);
    admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: topics.events, numPartitions: PARTITIONS },
        { topic: topics.alerts },
        { topic: topics.dlq },
      ],
    });
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await producer?.disconnect();
    await admin?.disconnect();
  });

  const startDetector = () => {
    const child = spawn(process.execPath, ['services/detector/dist/main.js'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        KAFKA_BROKERS: kafkaBrokers.join(','),
        AUDIT_EVENTS_TOPIC: topics.events,
        AUDIT_ALERTS_TOPIC: topics.alerts,
        AUDIT_DLQ_TOPIC: topics.dlq,
        DETECTOR_STATE_TOPIC: topics.state,
        DETECTOR_GROUP_ID: groupId,
        DETECTOR_INSTANCE_ID: 'int-0',
        DETECTOR_POLICY_FILE: policyFile,
        DETECTOR_PORT: '0',
        DETECTOR_SESSION_TIMEOUT: '6s',
        DETECTOR_IDLE_FLUSH: '1s',
        LOG_LEVEL: 'info',
      },
    });
    const logs: string[] = [];
    child.stdout?.on('data', (chunk) => logs.push(String(chunk)));
    child.stderr?.on('data', (chunk) => logs.push(String(chunk)));
    children.push(child);
    const port = waitFor('the ops port in the logs', async () => {
      const match = /"port":(\d+)[^\n]*health and metrics listening/.exec(logs.join(''));
      return match ? Number(match[1]) : undefined;
    });
    return { child, logs, port };
  };

  const produce = async (events: AuditEvent[], partitionOf?: (event: AuditEvent) => number) => {
    for (let i = 0; i < events.length; i += 2000) {
      await producer.send({
        topic: topics.events,
        messages: events.slice(i, i + 2000).map((event) => {
          const envelope: Envelope = { cluster: 'prod', receivedAt: event.stageTimestamp, event };
          const message = { key: partitionKey('prod', event), value: JSON.stringify(envelope) };
          return partitionOf ? { ...message, partition: partitionOf(event) } : message;
        }),
      });
    }
  };

  /** Committed offsets of the group, summed, and the end of the topic. */
  const progress = async () => {
    const [ends, committed] = await Promise.all([
      admin.fetchTopicOffsets(topics.events),
      admin.fetchOffsets({ groupId, topics: [topics.events] }),
    ]);
    const end = ends.reduce((sum, p) => sum + Number(p.high), 0);
    const done = (committed[0]?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    return { end, done };
  };
  const caughtUp = () =>
    waitFor(
      'the detector to commit every offset',
      async () => {
        const { end, done } = await progress();
        return end > 0 && done === end ? true : undefined;
      },
      90_000,
    );

  const readAlerts = (expected: number) => readTopic<Finding>(topics.alerts, expected);
  const readTopic = async <T = Record<string, unknown>>(topic: string, expected: number): Promise<T[]> => {
    const consumer = kafka.consumer({ groupId: uniqueName('det-reader'), readUncommitted: false });
    const findings: T[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => void findings.push(JSON.parse(String(message.value))),
    });
    try {
      await waitFor(
        `${expected} findings on the alerts topic`,
        async () => (findings.length >= expected ? true : undefined),
        60_000,
      );
      // Anything repeated would arrive right behind: give it a moment to show up.
      await new Promise((resolve) => setTimeout(resolve, 3000));
    } finally {
      await consumer.disconnect();
    }
    return findings;
  };

  it('loses no baseline and repeats or misses no finding when killed mid-stream', async () => {
    const { warmup, day, trailing, clocks } = scenario();
    // What one uninterrupted engine finds, per partition as the detector partitions it.
    const reference = createEngine({ policy: loadPolicyText(POLICY) });
    const expected = [...warmup, ...day, ...trailing].flatMap((event) =>
      reference.process({ cluster: 'prod', event }),
    );
    expect(expected.length).toBe(USERS);
    expect(new Set(expected.map((f) => f.rule))).toEqual(new Set(['secret-new-source-ip']));

    const clockPartition = (event: AuditEvent) => {
      const index = clocks.indexOf(event.user.username);
      return index >= 0 ? index : -1;
    };
    await produce(
      warmup.filter((e) => clockPartition(e) >= 0),
      (e) => clockPartition(e),
    );
    await produce(warmup.filter((e) => clockPartition(e) < 0));
    await producer.send({
      topic: topics.events,
      messages: [{ key: 'prod/garbage', value: '{"cluster":"prod","event":' }],
    });

    // 1. Learn the baselines, then stop hard: no graceful commit, no leaving the group.
    const first = startDetector();
    await first.port;
    await caughtUp();
    await produce(day);
    await waitFor(
      'the detector to be mid-stream',
      async () => {
        const { end, done } = await progress();
        return done > warmup.length && done < end ? true : undefined;
      },
      60_000,
    );
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    const atKill = await progress();
    expect(atKill.done).toBeLessThan(atKill.end);

    // 2. Restart with the same instance id: it fences the dead one, restores state from the changelog.
    const second = startDetector();
    const port = await second.port;
    await produce(trailing, (e) => clockPartition(e));
    await caughtUp();
    const findings = await readAlerts(expected.length);

    const ids = findings.map((f) => f.id);
    expect(ids.length).toBe(new Set(ids).size); // nothing repeated
    const byId = (list: Finding[]) => [...list].sort((a, b) => a.id.localeCompare(b.id));
    // Nothing missed, and identical content: the known addresses prove the baselines survived the kill.
    expect(byId(findings)).toEqual(byId(expected));
    expect(findings[0]!.details).toMatchObject({ knownIPs: [expect.stringMatching(/^203\.0\.113\./)] });
    expect(second.logs.join('')).toMatch(/partition state restored/);

    const deadLetters = await readTopic(topics.dlq, 1);
    expect(deadLetters).toEqual([
      expect.objectContaining({
        source: 'detector',
        topic: topics.events,
        reason: expect.stringMatching(/not valid JSON/),
      }),
    ]);

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/kaudit_detector_events_received_total\{service="detector"\} \d+/);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);

    second.child.kill('SIGTERM');
    const code = await new Promise((resolve) => second.child.once('exit', resolve));
    expect(code).toBe(0);
  }, 300_000);
});

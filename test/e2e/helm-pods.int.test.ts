import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '@kaudit/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { parseAllDocuments } from 'yaml';
import {
  type MaterializedContainer,
  materializeContainers,
  type Probe,
  type RenderedObject,
} from '../unit/chart-pods';

// The four services started from the chart's rendered pod specs (deploy/kubernetes/kaudit.yaml, the default
// values) the way a kubelet would start them: the rendered environment, the rendered ConfigMaps as files at
// their mount paths, the Secrets as files (real certificates for the sink), and then probed exactly as the
// rendered startup, liveness and readiness probes say (path, named port, scheme). There is no kubelet here,
// so a few things differ from a cluster, each overridden below and only these: the ports (free ones, not
// 8443/930x, which other stacks on this machine may hold), the Kafka and Elasticsearch addresses (the test
// stack's), and the topic, group and data-stream names (this run's own, so no other suite sees them).
const root = join(__dirname, '../..');
const brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
const esNode = process.env.ES_NODE ?? 'http://127.0.0.1:9200';
const run = randomBytes(4).toString('hex');

const objects = parseAllDocuments(readFileSync(join(root, 'deploy/kubernetes/kaudit.yaml'), 'utf8'))
  .map((doc) => doc.toJS() as RenderedObject | null)
  .filter((o): o is RenderedObject => o !== null);

const PORT_VARIABLE: Record<string, string> = {
  sink: 'SINK_PORT',
  detector: 'DETECTOR_PORT',
  indexer: 'INDEXER_PORT',
  alerter: 'ALERTER_PORT',
};

/** What this run changes of a rendered environment (see the header), and nothing else. */
function overrides(container: string, port: number): Record<string, string> {
  return {
    [PORT_VARIABLE[container]!]: String(port),
    KAFKA_BROKERS: brokers,
    AUDIT_EVENTS_TOPIC: `helm-${run}.events`,
    AUDIT_ALERTS_TOPIC: `helm-${run}.alerts`,
    AUDIT_DLQ_TOPIC: `helm-${run}.dlq`,
    ...(container === 'detector'
      ? { DETECTOR_GROUP_ID: `helm-${run}-detector`, DETECTOR_STATE_TOPIC: `helm-${run}.detector-state` }
      : {}),
    ...(container === 'indexer'
      ? {
          ES_NODE: esNode,
          INDEXER_GROUP_ID: `helm-${run}-indexer`,
          ES_DATA_STREAM_NAMESPACE: `helm${run}`,
          ES_NUMBER_OF_REPLICAS: '0',
        }
      : {}),
    ...(container === 'alerter'
      ? { ALERTER_GROUP_ID: `helm-${run}-alerter`, ALERTER_DELIVERED_TOPIC: `helm-${run}.alerter-delivered` }
      : {}),
  };
}

/** One HTTP(S) GET as the kubelet's httpGet probe makes it; the status code, or undefined when refused. */
function probe(spec: Probe, port: number, ca: Buffer): Promise<number | undefined> {
  const https = (spec.httpGet.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
  const url = `${https ? 'https' : 'http'}://localhost:${port}${spec.httpGet.path}`;
  if (!https)
    return fetch(url, { signal: AbortSignal.timeout(5000) })
      .then((r) => r.status)
      .catch(() => undefined);
  return new Promise((resolve) => {
    const req = request(url, { ca, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

interface Started {
  pod: MaterializedContainer;
  port: number;
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

let certs = '';
let started: Started[] = [];

beforeAll(async () => {
  // The topics exist before the services start, as in a cluster where an operator or an earlier rollout
  // created them: on this branch's base a service that reads a topic created an instant before can fail
  // its start on a partition not yet hosted (a start-up race of the services, not of the chart, fixed by
  // the start-up work on main; a kubelet would restart the pod).
  const admin = new Kafka({
    clientId: 'helm-pods-test',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        ...['events', 'alerts', 'dlq'].map((t) => ({ topic: `helm-${run}.${t}`, numPartitions: 3 })),
        // As the alerter creates it (delivered-store.ts), with its default retention (14 d).
        {
          topic: `helm-${run}.alerter-delivered`,
          numPartitions: 3,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact,delete' },
            { name: 'retention.ms', value: String(14 * 86_400_000) },
          ],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
  certs = mkdtempSync(join(tmpdir(), 'kaudit-helm-pods-certs-'));
  execFileSync('sh', [join(root, 'deploy/compose/dev-certs.sh'), certs, String(process.getuid?.() ?? 0)]);
  const secretFile = (secret: string, key: string) => {
    const files: Record<string, string> = {
      'kaudit-sink-tls/tls.crt': 'server.crt',
      'kaudit-sink-tls/tls.key': 'server.key',
      'kaudit-sink-client-ca/ca.crt': 'ca.crt',
    };
    const file = files[`${secret}/${key}`];
    return file ? readFileSync(join(certs, file), 'utf8') : undefined;
  };
  for (const pod of materializeContainers(objects, secretFile)) {
    const port = await freeLoopbackPort();
    const env = { ...pod.env, ...overrides(pod.container, port) };
    const child = spawn(process.execPath, [join(root, `services/${pod.container}/dist/main.js`)], {
      env: { PATH: process.env.PATH, HOME: pod.root, ...env },
      cwd: pod.root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    started.push({ pod, port, child, output, exited });
  }
}, 60_000);

afterAll(async () => {
  for (const s of started) if (s.child.exitCode === null) s.child.kill('SIGTERM');
  await Promise.all(started.map((s) => s.exited));
  for (const s of started) s.pod.cleanup();
  started = [];
  rmSync(certs, { recursive: true, force: true });
}, 60_000);

/**
 * Probes until the answer is 200, as the kubelet repeats a probe, at most the probe's own budget of
 * attempts (failureThreshold × periodSeconds, once a second); fails at once when the process exits.
 */
async function until200(s: Started, spec: Probe, budget: number): Promise<number | undefined> {
  let last: number | undefined;
  for (let attempt = 0; attempt < budget; attempt++) {
    if (s.child.exitCode !== null)
      throw new Error(`${s.pod.container} exited ${s.child.exitCode}:\n${s.output.join('')}`);
    last = await probe(spec, s.port, readFileSync(join(certs, 'ca.crt')));
    if (last === 200) return last;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return last;
}

describe('deploy > rendered pods started as processes and probed as the kubelet would', () => {
  it.each(['sink', 'detector', 'indexer', 'alerter'])(
    '%s: the startup, liveness and readiness probes reach 200 on the named port',
    async (container) => {
      const s = started.find((x) => x.pod.container === container)!;
      const { startupProbe, livenessProbe, readinessProbe } = s.pod.probes;
      for (const spec of [startupProbe, livenessProbe, readinessProbe]) {
        expect(spec).toBeDefined();
        // The named port is the container port that the service's own port variable sets.
        expect(s.pod.ports[String(spec!.httpGet.port)]).toBe(Number(s.pod.env[PORT_VARIABLE[container]!]));
      }
      expect(startupProbe!.httpGet.path).toBe('/healthz');
      expect(livenessProbe!.httpGet.path).toBe('/healthz');
      expect(readinessProbe!.httpGet.path).toBe('/readyz');
      expect(await until200(s, startupProbe!, 60 * 5)).toBe(200);
      expect(await probe(livenessProbe!, s.port, readFileSync(join(certs, 'ca.crt')))).toBe(200);
      expect(await until200(s, readinessProbe!, 60 * 5)).toBe(200);
    },
    400_000,
  );

  it("stops each service on SIGTERM within the pod's terminationGracePeriodSeconds, exit code 0", async () => {
    for (const s of started) s.child.kill('SIGTERM');
    const codes = await Promise.all(started.map((s) => s.exited));
    expect(codes).toEqual(started.map(() => 0));
  }, 60_000);
});

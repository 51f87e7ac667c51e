import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, decodeAuditText } from '@kaudit/audit-schema';
import { createRedactor, DEFAULT_REDACTION_POLICY } from '@kaudit/redaction';
import { createKafka, createLogger, ensureTopics, suppressKafkajsTimeoutWarning } from '@kaudit/service-kit';
import { CompressionTypes } from 'kafkajs';
import { DEFAULT_REDACTION_POLICY_FILE } from '../src/config';
import { ingestItems } from '../src/ingest';
import { startPeerSink } from './peer';
import { startSinkProcess } from './sink-process';

/**
 * `pnpm bench:sink`: events/s and request latency for 400-event batches of Metadata-level events
 * through the sink (dist/main.js in its own process, plain HTTP, with 1 and 2 SINK_WORKERS) into the real Kafka, beside the ceiling measured in the
 * same run: a bare kafkajs producer (same settings: idempotent, acks=-1, GZIP) sending the same
 * messages with the same number of batches in flight, and the peer (peer.ts: Benthos v4.27.0,
 * webhook -> Kafka) on the same request bodies, in BENCH_ROUNDS rounds (default 3), each path once per
 * round in a rotated order; figures are the rounds' medians. Not a test: nothing is asserted.
 */
const BATCH = 400;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 250);
const WARMUP = 10;
/** Rounds of every path (BENCH_ROUNDS): each figure is the median of its rounds. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
/** The sink's SINK_WORKERS values to measure, one run each (default 1 and 2). */
const SINK_WORKERS = (process.env.BENCH_SINK_WORKERS ?? '1,2').split(',').map(Number);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const logger = createLogger({ service: 'sink-bench', level: process.env.LOG_LEVEL ?? 'warn' });

const pick = <T>(list: readonly T[], n: number): T => list[n % list.length]!;
const users = [
  ...Array.from({ length: 20 }, (_, i) => ({
    username: `user${i}@example.com`,
    groups: ['system:authenticated', 'devs'],
  })),
  ...Array.from({ length: 20 }, (_, i) => ({
    username: `system:serviceaccount:team-${i % 5}:builder-${i}`,
    uid: randomUUID(),
    groups: ['system:serviceaccounts', `system:serviceaccounts:team-${i % 5}`, 'system:authenticated'],
  })),
  ...Array.from({ length: 10 }, (_, i) => ({
    username: `system:node:ip-10-0-${i}-17.ec2.internal`,
    groups: ['system:nodes', 'system:authenticated'],
  })),
];
const verbs = ['get', 'list', 'watch', 'get', 'get', 'create', 'update', 'patch', 'delete'];
const resources = ['secrets', 'configmaps', 'pods', 'secrets', 'serviceaccounts', 'leases'];
const agents = [
  'kubectl/v1.31.0 (linux/amd64) kubernetes/9b5ea4c',
  'kubelet/v1.30.4 (linux/amd64) kubernetes/a1b2c3d',
  'argocd-application-controller/v2.12.3',
  'Go-http-client/2.0',
];

/** A realistic Metadata-level event (what the recommended audit policy records for Secrets). */
function metadataEvent(n: number): AuditEvent {
  const user = pick(users, n * 7);
  const resource = pick(resources, n * 3);
  const namespace = `team-${n % 5}`;
  const name = `${resource.slice(0, -1)}-${n % 97}`;
  const verb = pick(verbs, n);
  const at = new Date(Date.UTC(2026, 0, 5, 10, 0, 0) + n * 37).toISOString().replace('Z', '123Z');
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: randomUUID(),
    stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/${namespace}/${resource}${verb === 'list' || verb === 'create' ? '' : `/${name}`}`,
    verb,
    user,
    sourceIPs: [`10.0.${n % 8}.${(n * 13) % 250}`],
    userAgent: pick(agents, n * 5),
    objectRef: { resource, namespace, name, apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: n % 50 === 0 ? 403 : 200 },
    requestReceivedTimestamp: at,
    stageTimestamp: at,
    annotations: {
      'authorization.k8s.io/decision': n % 50 === 0 ? 'forbid' : 'allow',
      'authorization.k8s.io/reason': `RBAC: allowed by RoleBinding "${resource}-reader/${namespace}" of Role "${resource}-reader" to User "${user.username}"`,
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function runConcurrently(
  jobs: number,
  concurrency: number,
  job: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs) await job(next++);
    }),
  );
}

interface Result {
  eventsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

interface Path {
  name: string;
  send: (i: number) => Promise<void>;
  results: Result[];
}

/** Per measure, the median over the rounds (each figure on its own). */
function median(results: Result[]): Result {
  const mid = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  return {
    eventsPerSecond: mid(results.map((r) => r.eventsPerSecond)),
    p50Ms: mid(results.map((r) => r.p50Ms)),
    p99Ms: mid(results.map((r) => r.p99Ms)),
  };
}

async function measure(batches: number, send: (i: number) => Promise<void>): Promise<Result> {
  const latencies: number[] = [];
  const started = performance.now();
  await runConcurrently(batches, CONCURRENCY, async (i) => {
    const t0 = performance.now();
    await send(i);
    latencies.push(performance.now() - t0);
  });
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    eventsPerSecond: (batches * BATCH) / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

async function main(): Promise<void> {
  // kafkajs' negative client-side throttle timer (service-kit kafkajs-warnings.ts), as in the services.
  suppressKafkajsTimeoutWarning();
  const run = `${Date.now().toString(36)}`;
  const sinkTopic = `bench-sink-events-${run}`;
  const ceilingTopic = `bench-sink-ceiling-${run}`;
  const dlqTopic = `bench-sink-dlq-${run}`;
  const peerTopic = `bench-sink-peer-${run}`;
  const kafka = createKafka({ clientId: 'sink-bench', brokers, logger });
  await ensureTopics(kafka, [
    ...SINK_WORKERS.map((workers) => ({ topic: `${sinkTopic}-${workers}`, numPartitions: 3 })),
    { topic: ceilingTopic, numPartitions: 3 },
    { topic: dlqTopic, numPartitions: 1 },
    { topic: peerTopic, numPartitions: 3 },
  ]);

  const total = WARMUP + BATCHES;
  const batches = Array.from({ length: total }, (_, b) =>
    Array.from({ length: BATCH }, (_, i) => metadataEvent(b * BATCH + i)),
  );
  const bodies = batches.map((items) =>
    JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items }),
  );
  const avgEventBytes = Math.round(bodies.reduce((sum, body) => sum + body.length, 0) / (total * BATCH));
  // The same messages the sink produces, built up front for the bare producer.
  const redactor = createRedactor(DEFAULT_REDACTION_POLICY);
  const messages = bodies.map((body) =>
    ingestItems(decodeAuditText(body), 'bench', new Date().toISOString(), {
      redactor,
      eventsTopic: ceilingTopic,
      dlqTopic,
    }).messages.map((m) => ({
      key: m.key,
      value: m.value,
    })),
  );

  // Ceiling: a bare kafkajs producer.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const sendBare = (i: number) =>
    producer
      .send({ topic: ceilingTopic, acks: -1, compression: CompressionTypes.GZIP, messages: messages[i]! })
      .then(() => undefined);

  // The sink as it ships (dist/main.js in its own process, like the peer), plain HTTP (TLS is not
  // what is measured here), once per worker count of BENCH_SINK_WORKERS.
  const agents: Agent[] = [];
  const poster = (port: number) => {
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    agents.push(agent);
    return (i: number) =>
      new Promise<void>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/audit',
            method: 'POST',
            agent,
            headers: { 'Content-Type': 'application/json' },
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`sink answered ${res.statusCode}`)),
            );
          },
        );
        req.on('error', reject);
        req.end(bodies[i]);
      });
  };
  const paths: Path[] = [{ name: 'ceiling (bare kafkajs producer)', send: sendBare, results: [] }];
  const stops: Array<() => Promise<void>> = [];
  const sinks: Array<{ workers: number; path: Path; counter: (name: string) => Promise<number> }> = [];
  for (const workers of SINK_WORKERS) {
    const sink = await startSinkProcess({
      KAFKA_BROKERS: brokers.join(','),
      SINK_INSECURE_DEV: 'true',
      SINK_HOST: '127.0.0.1',
      SINK_WORKERS: String(workers),
      AUDIT_EVENTS_TOPIC: `${sinkTopic}-${workers}`,
      AUDIT_DLQ_TOPIC: dlqTopic,
      SINK_CLUSTER_NAME: 'bench',
      SINK_SPOOL_DIR: join(tmpdir(), `kaudit-sink-bench-${run}-${workers}`),
      SINK_REDACTION_POLICY_FILE: process.env.SINK_REDACTION_POLICY_FILE ?? DEFAULT_REDACTION_POLICY_FILE,
      LOG_LEVEL: 'warn',
    });
    stops.push(() => sink.stop());
    // Ready already takes requests into the spool; measured is the path to Kafka, so every worker's
    // producer must be connected first.
    while ((await sink.counter('kaudit_sink_kafka_connected')) < workers)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const path: Path = { name: `sink, SINK_WORKERS=${workers}`, send: poster(sink.port), results: [] };
    paths.push(path);
    sinks.push({ workers, path, counter: (name) => sink.counter(name) });
  }
  const peer = await startPeerSink({ brokers, topic: peerTopic, inFlight: CONCURRENCY });
  let peerPath: Path | undefined;
  if ('url' in peer) {
    stops.push(() => peer.stop());
    peerPath = { name: 'peer (Benthos v4.27.0)', send: poster(Number(new URL(peer.url).port)), results: [] };
    paths.push(peerPath);
  }
  for (const path of paths) await runConcurrently(WARMUP, CONCURRENCY, path.send);
  // Rounds, each path once per round, the order rotated: a path measured always last (after the others
  // warmed the broker and filled its page cache) was favoured. Figures are the medians of the rounds.
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < paths.length; k++) {
      const path = paths[(round + k) % paths.length]!;
      path.results.push(await measure(BATCHES, (i) => path.send(WARMUP + i)));
    }
  }
  const spooled = new Map<number, number>();
  for (const sink of sinks)
    spooled.set(sink.workers, await sink.counter('kaudit_sink_deliveries_total{to="spool"'));
  for (const stop of stops) await stop();
  for (const agent of agents) agent.destroy();
  await producer.disconnect();
  const ceiling = median(paths[0]!.results);
  const peerResult = peerPath ? median(peerPath.results) : undefined;
  const sinkResults = sinks.map((sink) => ({
    workers: sink.workers,
    result: median(sink.path.results),
    spooled: spooled.get(sink.workers) ?? 0,
  }));

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const spread = (path: Path) => {
    const rates = path.results.map((r) => Math.round(r.eventsPerSecond / 1000)).sort((a, b) => a - b);
    const p99s = path.results.map((r) => r.p99Ms).sort((a, b) => a - b);
    return `${rates[0]}k-${rates[rates.length - 1]}k; ${p99s[0]!.toFixed(0)}-${p99s[p99s.length - 1]!.toFixed(0)} ms`;
  };
  const row = (path: Path) => {
    const r = median(path.results);
    return `| ${path.name.padEnd(32)} | ${Math.round(r.eventsPerSecond).toLocaleString('en-US').padStart(10)} | ${r.p50Ms.toFixed(1).padStart(8)} | ${r.p99Ms.toFixed(1).padStart(8)} | ${spread(path).padEnd(24)} |`;
  };
  const lines = [
    `sink benchmark: ${BATCHES} batches of ${BATCH} Metadata-level events (~${avgEventBytes} B each), ${CONCURRENCY} in flight, Kafka ${brokers.join(',')}; median of ${ROUNDS} rounds`,
    `machine: ${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    '',
    '| path                             |   events/s | p50 (ms) | p99 (ms) | rounds: events/s; p99    |',
    '| -------------------------------- | ---------: | -------: | -------: | ------------------------ |',
    ...sinks.map(({ path }) => row(path)),
    row(paths[0]!),
    ...(peerPath ? [row(peerPath)] : []),
    '',
    ...sinkResults.flatMap(({ workers, result, spooled }) => [
      `SINK_WORKERS=${workers}: sink / ceiling ${(result.eventsPerSecond / ceiling.eventsPerSecond).toFixed(2)}${
        peerResult
          ? `, kaudit / peer ${(result.eventsPerSecond / peerResult.eventsPerSecond).toFixed(2)} (p99 ${result.p99Ms.toFixed(1)} ms vs ${peerResult.p99Ms.toFixed(1)} ms)`
          : ''
      }${spooled > 0 ? `  (note: ${spooled} requests went to the spool)` : ''}`,
    ]),
    ...(peerResult ? [] : [`peer not measured: ${'unavailable' in peer ? peer.unavailable : ''}`]),
    `load average: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);

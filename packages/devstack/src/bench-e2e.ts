import { readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { consumerLag, createKafka, createLogger, suppressKafkajsTimeoutWarning } from '@kaudit/service-kit';
import { createBenchTraffic, type Probe } from './bench-traffic';
import { defaultRootDir, type Pipeline, startPipeline } from './pipeline';

/**
 * `pnpm bench:e2e`: events/s through the whole pipeline (sink -> Kafka -> detector and indexer ->
 * Elasticsearch, findings -> indexer and alerter) on this machine, in steps of rising offered load. A
 * step is sustained when the consumer lag of the detector and the indexer stays bounded: at most 3 s of
 * traffic through the second half of the step, not growing in its last quarter, drained within 10 s.
 * Latency: from the sink's 2xx for the batch that lets the detector close a probe's window to the probe's
 * finding being searchable in Elasticsearch. Not a test: figures depend on the machine (README).
 */

const BATCH = 400;
const STEP_SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 30);
const FIRST_RATE = Number(process.env.BENCH_FIRST_RATE ?? 1000);
const MAX_STEPS = Number(process.env.BENCH_MAX_STEPS ?? 6);
const IN_FLIGHT = 4;
const PROBE_EVERY_BATCHES = 5;
/**
 * Event time per event: a batch of 400 spans 100 s, so a probe's 10-minute window (+2 min lateness) closes
 * 4-8 batches later, and a run of a million events stays inside the 7-day learning period.
 */
const SPACING_MS = 250;

interface StepResult {
  target: number;
  achieved: number;
  requestMs: { p50: number; p99: number };
  detectorLag: { max: number; end: number };
  indexerLag: { max: number; end: number };
  bounded: boolean;
  latencyMs: { p50: number; p99: number; n: number };
  drainSeconds: number;
}

const percentile = (values: number[], p: number) => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

async function main(): Promise<void> {
  suppressKafkajsTimeoutWarning();
  const loadBefore = loadavg()[0] ?? 0;
  const run = `bench${Date.now().toString(36)}`;
  const log = (text: string) => process.stderr.write(`[bench:e2e] ${text}\n`);
  const stateDir = join(defaultRootDir, '.kaudit', 'bench', run);
  log(
    `starting the pipeline (topics ${run}.*, data streams logs-kubernetes.audit_logs-kaudit_${run}, logs-kaudit.findings-${run})`,
  );
  const pipeline = await startPipeline({
    stateDir,
    idPrefix: run,
    esNamespace: run,
    clusterName: 'bench',
    topics: {
      events: `${run}.events`,
      alerts: `${run}.alerts`,
      dlq: `${run}.dlq`,
      detectorState: `${run}.detector-state`,
      alerterDelivered: `${run}.alerter-delivered`,
    },
    ports: { sink: 0, detector: 0, indexer: 0, alerter: 0, slack: 0 },
    logLevel: 'warn',
    log,
  });
  let results: StepResult[] = [];
  try {
    results = await measure(pipeline, log);
  } finally {
    await pipeline.stop();
  }
  process.stdout.write(report(results, loadBefore));
  // The services' logs of a completed run are not needed (a failed run keeps them for a look).
  rmSync(stateDir, { recursive: true, force: true });
}

async function measure(pipeline: Pipeline, log: (text: string) => void): Promise<StepResult[]> {
  const policy = { groupingWindowMs: 10 * 60_000, allowedLatenessMs: 2 * 60_000 }; // policies/detection.yaml
  const traffic = createBenchTraffic({
    startMs: Date.UTC(2026, 2, 2, 8, 0, 0),
    spacingMs: SPACING_MS,
    ...policy,
  });
  const agent = new Agent({
    keepAlive: true,
    maxSockets: IN_FLIGHT,
    cert: readFileSync(pipeline.certs.clientCert),
    key: readFileSync(pipeline.certs.clientKey),
    ca: readFileSync(pipeline.certs.caCert),
  });
  const url = new URL(pipeline.urls.sink);
  const post = (items: string[]) =>
    new Promise<void>((resolve, reject) => {
      const body = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[${items.join(',')}]}`;
      const req = request(
        url,
        { method: 'POST', agent, headers: { 'Content-Type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`sink answered ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  const logger = createLogger({ service: 'bench-e2e', level: 'warn' });
  const kafka = createKafka({
    clientId: 'bench-e2e',
    brokers: pipeline.urls.kafka.split(','),
    security: pipeline.kafkaSecurity,
    logger,
  });
  const es = new Client({ node: pipeline.urls.elasticsearch });
  const lag = async () => ({
    detector: await consumerLag(kafka, pipeline.groupIds.detector, pipeline.topics.events),
    indexer: await consumerLag(kafka, pipeline.groupIds.indexer, pipeline.topics.events),
  });

  // Probes waiting for their window to close (by a later batch's 2xx), then for their finding in ES.
  const waitingToClose: Probe[] = [];
  const closedAt = new Map<string, { at: number; step: number }>();
  const searchable = new Map<string, number>();
  let polling = true;
  let deadline = Number.POSITIVE_INFINITY;
  const poller = (async () => {
    while (polling || closedAt.size > searchable.size) {
      const pending = [...closedAt.keys()].filter((id) => !searchable.has(id));
      if (pending.length > 0) {
        const result = await es
          .search<{ user?: { name?: string } }>({
            index: pipeline.dataStreams.findings,
            size: pending.length,
            query: { terms: { 'user.name': pending } },
            _source: ['user.name'],
          })
          .catch(() => undefined);
        const now = Date.now();
        for (const hit of result?.hits.hits ?? []) {
          const name = hit._source?.user?.name;
          if (name && !searchable.has(name)) searchable.set(name, now);
        }
      }
      if (!polling && Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();

  const results: StepResult[] = [];
  let target = FIRST_RATE;
  for (let step = 0; step < MAX_STEPS; step++) {
    log(`step ${step + 1}: offering ${target} events/s for ${STEP_SECONDS} s`);
    const requestMs: number[] = [];
    const lagSamples: Array<{ t: number; detector: number; indexer: number }> = [];
    const started = Date.now();
    const intervalMs = (BATCH / target) * 1000;
    let sent = 0;
    let batchIndex = 0;
    const inFlight = new Set<Promise<void>>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const sample = await lag().catch(() => undefined);
        if (sample) lagSamples.push({ t: Date.now() - started, ...sample });
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    })();

    while (Date.now() - started < STEP_SECONDS * 1000) {
      const due = started + batchIndex * intervalMs;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      const batch = traffic.nextBatch(BATCH, batchIndex % PROBE_EVERY_BATCHES === 0);
      batchIndex += 1;
      waitingToClose.push(...batch.probes);
      const t0 = Date.now();
      const task = post(batch.items).then(() => {
        const now = Date.now();
        requestMs.push(now - t0);
        sent += batch.items.length;
        // This batch carries events past these probes' windows: from its 2xx on, the finding can be made.
        for (let i = waitingToClose.length - 1; i >= 0; i--) {
          const probe = waitingToClose[i]!;
          if (batch.maxEventTime >= probe.closesAt) {
            if (!closedAt.has(probe.identity)) closedAt.set(probe.identity, { at: now, step });
            waitingToClose.splice(i, 1);
          }
        }
      });
      const tracked = task.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    }
    await Promise.all(inFlight);
    const elapsed = (Date.now() - started) / 1000;
    sampling = false;
    await sampler;

    const secondHalf = lagSamples.filter((s) => s.t >= (STEP_SECONDS * 1000) / 2);
    const end = lagSamples.at(-1) ?? { detector: 0, indexer: 0 };
    const achieved = Math.round(sent / elapsed);
    const drainStarted = Date.now();
    for (;;) {
      const now = await lag();
      if ((now.detector === 0 && now.indexer === 0) || Date.now() - drainStarted > 90_000) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const drainSeconds = (Date.now() - drainStarted) / 1000;
    // Bounded: the load was taken, the consumers stayed within a few seconds of it (committed offsets
    // move in steps, so a second or two of lag is normal), their lag was not still growing in the last
    // quarter of the step, and they caught up within seconds after.
    const allowed = Math.max(4 * BATCH, 3 * achieved);
    const mean = (samples: typeof lagSamples, key: 'detector' | 'indexer') =>
      samples.reduce((sum, s) => sum + s[key], 0) / Math.max(1, samples.length);
    const quarter = (from: number, to: number) =>
      lagSamples.filter((s) => s.t >= from * STEP_SECONDS * 1000 && s.t < to * STEP_SECONDS * 1000);
    const growing = (key: 'detector' | 'indexer') =>
      mean(quarter(0.75, 1.01), key) > mean(quarter(0.5, 0.75), key) + achieved;
    const bounded =
      achieved >= 0.9 * target &&
      secondHalf.every((s) => s.detector <= allowed && s.indexer <= allowed) &&
      !growing('detector') &&
      !growing('indexer') &&
      drainSeconds <= 10;
    // Give this step's findings time to become searchable before reading their latencies.
    const waitUntil = Date.now() + 15_000;
    while (Date.now() < waitUntil) {
      const open = [...closedAt].filter(([id, c]) => c.step === step && !searchable.has(id));
      if (open.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const latencies = [...closedAt]
      .filter(([id, c]) => c.step === step && searchable.has(id))
      .map(([id, c]) => Math.max(0, searchable.get(id)! - c.at));
    const result: StepResult = {
      target,
      achieved,
      requestMs: { p50: percentile(requestMs, 50), p99: percentile(requestMs, 99) },
      detectorLag: { max: Math.max(0, ...secondHalf.map((s) => s.detector)), end: end.detector },
      indexerLag: { max: Math.max(0, ...secondHalf.map((s) => s.indexer)), end: end.indexer },
      bounded,
      latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), n: latencies.length },
      drainSeconds,
    };
    results.push(result);
    log(
      `step ${step + 1}: ${achieved} events/s, lag max detector ${result.detectorLag.max} indexer ${result.indexerLag.max}, ` +
        `${bounded ? 'bounded' : 'NOT bounded'}; finding latency p50 ${result.latencyMs.p50} ms p99 ${result.latencyMs.p99} ms (n=${latencies.length})`,
    );
    if (!bounded) break;
    target = Math.round(target * 1.5);
  }
  polling = false;
  deadline = Date.now() + 1000;
  await poller;
  agent.destroy();
  await es.close();
  return results;
}

function report(results: StepResult[], loadBefore: number): string {
  const header = [
    'offered ev/s',
    'achieved ev/s',
    'sink 2xx p50/p99 ms',
    'detector lag max/end',
    'indexer lag max/end',
    'bounded',
    'finding latency p50/p99 ms (n)',
  ];
  const rows = results.map((r) => [
    String(r.target),
    String(r.achieved),
    `${r.requestMs.p50}/${r.requestMs.p99}`,
    `${r.detectorLag.max}/${r.detectorLag.end}`,
    `${r.indexerLag.max}/${r.indexerLag.end}`,
    r.bounded ? 'yes' : 'no',
    `${r.latencyMs.p50}/${r.latencyMs.p99} (${r.latencyMs.n})`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const sustained = results.filter((r) => r.bounded).at(-1);
  const cpu = cpus();
  const machine = `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  return [
    '',
    `pnpm bench:e2e on ${machine}; Kafka, Elasticsearch, the four services and the load generator on the same machine`,
    `(1-minute load average ${loadBefore.toFixed(1)} before the run, ${(loadavg()[0] ?? 0).toFixed(1)} after)`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    sustained
      ? `sustained: ${sustained.achieved} events/s with bounded consumer lag; finding searchable in Elasticsearch p50 ${sustained.latencyMs.p50} ms, p99 ${sustained.latencyMs.p99} ms after the 2xx that closed its window`
      : 'sustained: no step kept the consumer lag bounded',
    '',
  ].join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:e2e failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { consumerLag, createKafka, createLogger, suppressKafkajsTimeoutWarning } from '@kaudit/service-kit';
import { coresBetween, formatCores, readCpu, stackPids } from './bench-cpu';
import { type DetectResult, detectReport, measureTimeToDetect } from './bench-detect';
import { createSinkPoster, markSearchable, percentile } from './bench-post';
import { createBenchTraffic, type Probe } from './bench-traffic';
import {
  defaultRootDir,
  isolatedRun,
  type Pipeline,
  type PipelineOptions,
  type ServiceName,
  startPipeline,
} from './pipeline';

/**
 * `pnpm bench:e2e`: events/s through the whole pipeline (sink -> Kafka -> detector and indexer ->
 * Elasticsearch, findings -> indexer and alerter) on this machine, in steps of rising offered load. A
 * step is sustained when the consumer lag of the detector and the indexer stays bounded: at most 3 s of
 * traffic through the second half of the step, not growing in its last quarter, drained within 10 s.
 * Latency: from the sink's 2xx for the batch that lets the detector close a probe's window to the probe's
 * finding being searchable in Elasticsearch. BENCH_RUNS runs (default 3), each on a pipeline of its own,
 * so the report gives the spread between runs beside the load average. Then time to detect
 * (bench-detect.ts) with the API server's batch max wait at 30 s and at 1 s (BENCH_TTD=0 skips it).
 * Not a test: figures depend on the machine (README).
 */

const BATCH = 400;
const STEP_SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 30);
const FIRST_RATE = Number(process.env.BENCH_FIRST_RATE ?? 1000);
const MAX_STEPS = Number(process.env.BENCH_MAX_STEPS ?? 6);
const IN_FLIGHT = 4;
const PROBE_EVERY_BATCHES = 5;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TTD = process.env.BENCH_TTD !== '0';
const TTD_RATE = Number(process.env.BENCH_TTD_RATE ?? 4000);
const TTD_SECONDS = Number(process.env.BENCH_TTD_SECONDS ?? 90);
/** The lateness an operator sets for each batch wait (docs/detection.md): the default, and 2 s for 1 s. */
const TTD_SCENARIOS = [
  { batchMaxWaitMs: 30_000, allowedLateness: '30s' },
  { batchMaxWaitMs: 1000, allowedLateness: '2s' },
].filter((s) => (process.env.BENCH_TTD_WAITS ?? '30000,1000').split(',').includes(String(s.batchMaxWaitMs)));
/**
 * Event time per event: a batch of 400 spans 100 s, so the watermark (30 s lateness) passes a probe
 * within the next batch, and a run of a million events stays inside the 7-day learning period.
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
  /** Cores each process used during the step (bench-cpu.ts), largest first. */
  cores: Array<[string, number]>;
}

/** BENCH_CPU_PROF=detector,sink: those services run under `node --cpu-prof` (profiles kept with the logs). */
const PROFILED = (process.env.BENCH_CPU_PROF ?? '').split(',').filter(Boolean) as ServiceName[];

function serviceEnv(profileDir: string): PipelineOptions['serviceEnv'] {
  const env: NonNullable<PipelineOptions['serviceEnv']> = {};
  for (const name of PROFILED) env[name] = { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profileDir}` };
  // BENCH_DETECTOR_LOG_LEVEL=debug logs each batch's process/state/commit times (with BENCH_KEEP_LOGS=1).
  if (process.env.BENCH_DETECTOR_LOG_LEVEL)
    env.detector = { ...env.detector, LOG_LEVEL: process.env.BENCH_DETECTOR_LOG_LEVEL };
  return env;
}

const log = (text: string) => process.stderr.write(`[bench:e2e] ${text}\n`);

/** A pipeline of its own (topics <run>.*, data streams logs-kaudit.*-<run>) around `body`. */
async function withPipeline<T>(
  label: string,
  extra: Partial<PipelineOptions>,
  body: (pipeline: Pipeline, stateDir: string) => Promise<T>,
): Promise<T> {
  const run = `bench${Date.now().toString(36)}`;
  const stateDir = join(defaultRootDir, '.kaudit', 'bench', run);
  mkdirSync(stateDir, { recursive: true });
  log(
    `${label}: starting the pipeline (topics ${run}.*, data streams logs-kubernetes.audit_logs-kaudit_${run}, logs-kaudit.findings-${run})`,
  );
  const options: PipelineOptions = {
    stateDir,
    ...isolatedRun(run),
    clusterName: 'bench',
    logLevel: 'warn',
    serviceEnv: serviceEnv(join(stateDir, 'profiles')),
    log,
    ...extra,
  };
  const pipeline = await startPipeline(options);
  try {
    const result = await body(pipeline, stateDir);
    // The services' logs of a completed run are not needed (a failed run keeps them for a look).
    if (process.env.BENCH_KEEP_LOGS !== '1' && !PROFILED.length)
      rmSync(stateDir, { recursive: true, force: true });
    else log(`logs kept in ${stateDir}`);
    return result;
  } finally {
    await pipeline.stop();
  }
}

async function main(): Promise<void> {
  suppressKafkajsTimeoutWarning();
  const loads: number[] = [loadavg()[0] ?? 0];
  const runs: StepResult[][] = [];
  for (let i = 0; i < RUNS; i++) {
    runs.push(await withPipeline(`run ${i + 1} of ${RUNS}`, {}, (pipeline) => measure(pipeline)));
    loads.push(loadavg()[0] ?? 0);
  }
  process.stdout.write(report(runs, loads));
  if (!TTD) return;
  const detect: DetectResult[] = [];
  const policyText = readFileSync(join(defaultRootDir, 'policies/detection.yaml'), 'utf8');
  for (const scenario of TTD_SCENARIOS) {
    const file = join(defaultRootDir, '.kaudit', 'bench', `detection-${scenario.allowedLateness}.yaml`);
    mkdirSync(join(defaultRootDir, '.kaudit', 'bench'), { recursive: true });
    writeFileSync(
      file,
      policyText.replace(/allowedLateness: \S+/, `allowedLateness: ${scenario.allowedLateness}`),
    );
    const label = `time to detect, batch max wait ${scenario.batchMaxWaitMs} ms`;
    const result = await withPipeline(label, { detectionPolicyFile: file }, (pipeline) =>
      measureTimeToDetect(pipeline, scenario, {
        rate: TTD_RATE,
        probeSeconds: TTD_SECONDS,
        tailSeconds: 60 + scenario.batchMaxWaitMs / 1000,
        log,
      }),
    );
    detect.push(result);
    log(detectReport([result]));
  }
  process.stdout.write(
    `\n${detectReport(detect)}(1-minute load average ${(loadavg()[0] ?? 0).toFixed(1)} after)\n`,
  );
}

async function measure(pipeline: Pipeline): Promise<StepResult[]> {
  const policy = { groupingWindowMs: 10 * 60_000, allowedLatenessMs: 30_000 }; // policies/detection.yaml
  const traffic = createBenchTraffic({
    startMs: Date.UTC(2026, 2, 2, 8, 0, 0),
    spacingMs: SPACING_MS,
    ...policy,
  });
  const sink = createSinkPoster(pipeline, IN_FLIGHT);
  const { post } = sink;

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
      await markSearchable(es, pipeline.dataStreams.findings, pending, searchable);
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
    const cpuPids = {
      ...stackPids(),
      ...Object.fromEntries(pipeline.services.map((service) => [service.name, service.pid])),
    };
    const cpuBefore = readCpu(cpuPids);
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
    const cores = coresBetween(cpuBefore, readCpu(cpuPids), elapsed);
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
      cores,
    };
    results.push(result);
    log(
      `step ${step + 1}: ${achieved} events/s, lag max detector ${result.detectorLag.max} indexer ${result.indexerLag.max}, ` +
        `${bounded ? 'bounded' : 'NOT bounded'}; finding latency p50 ${result.latencyMs.p50} ms p99 ${result.latencyMs.p99} ms (n=${latencies.length}); ` +
        `cores: ${formatCores(cores)}`,
    );
    if (!bounded) break;
    target = Math.round(target * 1.5);
  }
  polling = false;
  deadline = Date.now() + 1000;
  await poller;
  sink.close();
  await es.close();
  return results;
}

function report(runs: StepResult[][], loads: number[]): string {
  const header = [
    'run',
    'offered ev/s',
    'achieved ev/s',
    'sink 2xx p50/p99 ms',
    'detector lag max/end',
    'indexer lag max/end',
    'bounded',
    'finding latency p50/p99 ms (n)',
  ];
  const rows = runs.flatMap((results, run) =>
    results.map((r) => [
      String(run + 1),
      String(r.target),
      String(r.achieved),
      `${r.requestMs.p50}/${r.requestMs.p99}`,
      `${r.detectorLag.max}/${r.detectorLag.end}`,
      `${r.indexerLag.max}/${r.indexerLag.end}`,
      r.bounded ? 'yes' : 'no',
      `${r.latencyMs.p50}/${r.latencyMs.p99} (${r.latencyMs.n})`,
    ]),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const sustained = runs.map((results) => results.filter((r) => r.bounded).at(-1)?.achieved ?? 0);
  const sorted = [...sustained].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
  const cpu = cpus();
  const machine = `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  return [
    '',
    `pnpm bench:e2e on ${machine}; Kafka, Elasticsearch, the four services and the load generator on the same machine`,
    `(1-minute load average before each run and after the last: ${loads.map((l) => l.toFixed(1)).join(', ')})`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `sustained with bounded consumer lag, per run: ${sustained.join(', ')} events/s ` +
      `(median ${median}, spread ${sorted[0] ?? 0}-${sorted.at(-1) ?? 0}; 0 = no step was bounded)`,
    '',
    `where the ${cpu.length} cores went in each step (cores used while the load was offered):`,
    ...runs.flatMap((results, run) =>
      results.map((r) => `- run ${run + 1}, ${r.target} events/s: ${formatCores(r.cores)}`),
    ),
    '',
  ].join('\n');
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:e2e failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});

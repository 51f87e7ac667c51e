import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { sleep } from '@kaudit/common';
import { createKafka, createLogger } from '@kaudit/service-kit';
import { defaultRootDir, isolatedRun, startPipeline } from '../pipeline';
import { ALERTS_PARTITIONS } from '../provision';
import { createDriver } from './driver';
import type { Scenario } from './scenarios';
import type { ChaosServers } from './servers';
import { createSupervisor } from './supervisor';
import { type Counts, countAll, createMemorySampler, pipelineLag } from './verify';

export interface ScenarioResult {
  id: number;
  name: string;
  title: string;
  outageSeconds: number;
  rate: number;
  achievedRate: number;
  counts: Counts;
  /** Answers other than 2xx the driver got (each retried), and events refused with 503 at least once. */
  refusals: Record<string, number>;
  refused503Events: number;
  /** From the end of the fault until every consumer's lag was within one second of traffic. */
  recoverySeconds: number | null;
  peakMemoryMiB: Record<string, number>;
  restarts: Record<string, number>;
  /** Exits no one planned and no crash policy explained (each a problem). */
  unplannedExits: Record<string, number>;
  /** Exits by a service's own crash policy (fatal reason logged, exit 1, restarted): designed, reported. */
  policyExits: string[];
  /** Every check held: nothing acknowledged lost, nothing stored or alerted twice, nothing unexpected. */
  passed: boolean;
  problems: string[];
}

export interface RunOptions {
  servers: ChaosServers;
  rate: number;
  outageMs: number;
  /** Load before the fault. */
  warmupMs: number;
  /** Load after recovery. */
  cooldownMs: number;
  /** How long to wait for the pipeline to drain and every finding to arrive, at most. */
  drainTimeoutMs: number;
  /** How long the consumers may take to catch up after the fault (default 10 minutes). */
  recoveryTimeoutMs?: number;
  stateDir?: string;
  /** Where the services' logs are kept after the scenario (`<dir>/<run>`); the state dir is removed. */
  keepLogsIn?: string;
  /** Told how to stop this scenario's processes at once (a Ctrl-C of the run); called with undefined when done. */
  onStoppable?: (stop: (() => Promise<void>) | undefined) => void;
  log: (text: string) => void;
}

/** The checks a scenario must pass, as sentences (empty: passed). */
export function problemsOf(counts: Counts): string[] {
  const problems: string[] = [];
  const { events, findings } = counts;
  if (events.missing > 0) problems.push(`${events.missing} acknowledged events are not in Elasticsearch`);
  if (events.duplicated > 0) problems.push(`${events.duplicated} events are stored more than once`);
  if (findings.onTopic < findings.expected)
    problems.push(`${findings.expected - findings.onTopic} expected findings are not on the alerts topic`);
  if (findings.onTopic > findings.expected)
    problems.push(`${findings.onTopic - findings.expected} probe findings have more than one id`);
  if (findings.inElasticsearch < findings.expected)
    problems.push(
      `${findings.expected - findings.inElasticsearch} expected findings are not in Elasticsearch`,
    );
  if (findings.esDuplicated > 0) problems.push(`${findings.esDuplicated} findings are stored more than once`);
  if (findings.atSlack < findings.expected)
    problems.push(`${findings.expected - findings.atSlack} expected findings never reached Slack`);
  if (findings.slackDuplicated > 0)
    problems.push(`${findings.slackDuplicated} findings alerted twice at Slack`);
  if (findings.unexpected > 0) problems.push(`${findings.unexpected} unexpected findings`);
  return problems;
}

export async function runScenario(scenario: Scenario, options: RunOptions): Promise<ScenarioResult> {
  const { servers, log } = options;
  const run = `chaos${scenario.id}${Date.now().toString(36)}`;
  const stateDir = options.stateDir ?? join(defaultRootDir, '.kaudit', 'chaos', run);
  const say = (text: string) => log(`[${scenario.name}] ${text}`);
  const policy = { groupingWindowMs: 10 * 60_000, allowedLatenessMs: 30_000 }; // policies/detection.yaml
  const pipeline = await startPipeline({
    stateDir,
    ...isolatedRun(run),
    clusterName: 'chaos',
    addresses: servers.addresses,
    startStack: false,
    ...(scenario.serviceEnv ? { serviceEnv: scenario.serviceEnv } : {}),
    logLevel: 'warn',
    log: say,
  });
  const logger = createLogger({ service: 'chaos', level: 'silent' });
  const kafka = createKafka({ clientId: `${run}-chaos`, brokers: servers.addresses.kafkaBrokers, logger });
  const es = new Client({ node: servers.addresses.esNode });
  const supervisor = createSupervisor(pipeline, { log: say });
  const memory = createMemorySampler(pipeline);
  options.onStoppable?.(async () => {
    await supervisor.stop();
    await pipeline.stop();
  });
  const context = { pipeline, servers, supervisor, outageMs: options.outageMs, log: say };
  try {
    await scenario.prepare?.(context);
    const driver = createDriver({
      sinkUrl: pipeline.urls.sink,
      certs: pipeline.certs,
      rate: options.rate,
      ...policy,
    });
    const started = Date.now();
    const driving = driver.run();
    say(`load: ${options.rate} events/s in batches of 400`);
    await sleep(options.warmupMs);
    await scenario.act(context);
    say('fault over: waiting for every consumer to catch up');
    const recoveryTimeoutMs = options.recoveryTimeoutMs ?? 600_000;
    const recoverySeconds = await waitForRecovery(
      async () => pipelineLag(kafka, pipeline),
      options.rate,
      recoveryTimeoutMs,
    );
    // What was still unread, for the report of a pipeline that did not recover.
    const lagAfterFault =
      recoverySeconds === null ? await pipelineLag(kafka, pipeline).catch(() => undefined) : undefined;
    say(
      `recovered ${recoverySeconds === null ? `NOT within ${recoveryTimeoutMs / 1000} s (lag ${JSON.stringify(lagAfterFault)})` : `in ${recoverySeconds.toFixed(1)} s`}`,
    );
    await sleep(options.cooldownMs);
    driver.stop();
    await driving;
    const achievedRate = Math.round(driver.counts().ackedEvents / ((Date.now() - started) / 1000));
    // Quiet traffic past the last probe's window (10 min + 30 s lateness: each batch spans 100 s).
    await driver.tail(10);
    const probes = driver.probes();
    say(`drained? waiting for ${probes.length} findings at the Slack stand-in`);
    await drain(
      async () => pipelineLag(kafka, pipeline),
      () => pipeline.slack.messages.length >= probes.length,
      options.drainTimeoutMs,
    );
    const counts = await countAll({
      es,
      kafka,
      pipeline,
      acked: driver.acked(),
      probes,
      groupId: `${run}-count`,
    });
    const problems = problemsOf(counts);
    if (recoverySeconds === null)
      problems.push(
        `not recovered within ${recoveryTimeoutMs / 1000} s of the fault: lag ${JSON.stringify(lagAfterFault)}`,
      );
    const unplannedExits = supervisor.unplannedExits();
    for (const [name, n] of Object.entries(unplannedExits))
      problems.push(`${name} exited on its own ${n} time(s) with no reason logged`);
    const driverCounts = driver.counts();
    return {
      id: scenario.id,
      name: scenario.name,
      title: scenario.title,
      outageSeconds: options.outageMs / 1000,
      rate: options.rate,
      achievedRate,
      counts,
      refusals: driverCounts.refusals,
      refused503Events: driverCounts.refused503Events,
      recoverySeconds,
      peakMemoryMiB: await memory.stop(),
      restarts: supervisor.restarts(),
      unplannedExits,
      policyExits: supervisor.policyExits(),
      passed: problems.length === 0,
      problems,
    };
  } finally {
    options.onStoppable?.(undefined);
    await supervisor.stop();
    await memory.stop();
    await pipeline.stop();
    await es.close();
    if (options.keepLogsIn) {
      cpSync(pipeline.logsDir, join(options.keepLogsIn, run), { recursive: true });
      say(`logs: ${join(options.keepLogsIn, run)}`);
    }
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Seconds until every lag is within one second of traffic (null: not within timeoutMs). */
async function waitForRecovery(
  lag: () => Promise<{ detector: number; indexer: number; alerter: number }>,
  rate: number,
  timeoutMs: number,
): Promise<number | null> {
  const from = Date.now();
  const bound = Math.max(800, rate);
  while (Date.now() - from < timeoutMs) {
    const now = await lag().catch(() => undefined);
    if (now && now.detector <= bound && now.indexer <= bound && now.alerter <= 50)
      return (Date.now() - from) / 1000;
    await sleep(1000);
  }
  return null;
}

/**
 * The alerts topic is written in transactions (the detector's exactly-once): after a partition's last
 * finding comes the transaction's commit marker, an offset the alerter never reads or commits past
 * (kafkajs commits the last message's offset + 1), so a drained alerter still shows a lag of one per
 * partition.
 */
const ALERTS_COMMIT_MARKERS = ALERTS_PARTITIONS;

/** Until every consumer has read everything (see ALERTS_COMMIT_MARKERS) and `done()` holds, or timeoutMs. */
async function drain(
  lag: () => Promise<{ detector: number; indexer: number; alerter: number }>,
  done: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const from = Date.now();
  while (Date.now() - from < timeoutMs) {
    const now = await lag().catch(() => undefined);
    if (now && now.detector === 0 && now.indexer === 0 && now.alerter <= ALERTS_COMMIT_MARKERS && done()) {
      // The last batch may still be in an open bulk or a digest: a few seconds more.
      await sleep(5000);
      return;
    }
    await sleep(1000);
  }
}

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suppressKafkajsTimeoutWarning } from '@kaudit/service-kit';
import { type ChaosReport, machineFacts, markdown } from './chaos/report';
import { runScenario } from './chaos/run';
import { SCENARIOS } from './chaos/scenarios';
import { chaosServers } from './chaos/servers';
import { defaultRootDir } from './pipeline';

/**
 * `pnpm chaos`: the whole pipeline as separate processes on its own Kafka and Elasticsearch (loopback,
 * ports CHAOS_KAFKA_PORT / CHAOS_ES_PORT), API-server-shaped load, one fault a scenario, then drain and
 * count (README "Reliability"). Settings: CHAOS_SCENARIOS (e.g. 1,3,4; default all), CHAOS_RATE
 * (events/s, 1500), CHAOS_OUTAGE_SECONDS (600), CHAOS_OUT (results directory, .kaudit/chaos).
 * Exits 1 when a scenario failed a check.
 */
async function main(): Promise<void> {
  suppressKafkajsTimeoutWarning();
  const env = process.env;
  const wanted = (env.CHAOS_SCENARIOS ?? '')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter(Boolean);
  const scenarios = SCENARIOS.filter((s) => wanted.length === 0 || wanted.includes(s.id));
  const rate = Number(env.CHAOS_RATE ?? 1500);
  const outageMs = Number(env.CHAOS_OUTAGE_SECONDS ?? 600) * 1000;
  const out = env.CHAOS_OUT ?? join(defaultRootDir, '.kaudit', 'chaos');
  const log = (text: string) => process.stderr.write(`[chaos] ${text}\n`);
  const servers = chaosServers({
    rootDir: defaultRootDir,
    dir: join(out, 'servers'),
    kafkaPort: Number(env.CHAOS_KAFKA_PORT ?? 9192),
    esPort: Number(env.CHAOS_ES_PORT ?? 9290),
    log,
  });
  const report: ChaosReport = {
    startedAt: new Date().toISOString(),
    machine: machineFacts(),
    settings: { rate, outageSeconds: outageMs / 1000 },
    scenarios: [],
  };
  mkdirSync(out, { recursive: true });
  const write = () => {
    writeFileSync(join(out, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(out, 'results.md'), markdown(report));
  };
  // Ctrl-C (or SIGTERM): stop the scenario's services and the run's own servers, keep what was written.
  let stopScenario: (() => Promise<void>) | undefined;
  const abort = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping the services and the run's Kafka and Elasticsearch`);
    void (async () => {
      await stopScenario?.().catch(() => undefined);
      await Promise.allSettled([servers.kafka.down(), servers.elasticsearch.down()]);
      write();
      process.exit(130);
    })();
  };
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  log(`starting the chaos run's own Kafka and Elasticsearch`);
  await Promise.all([servers.kafka.up(), servers.elasticsearch.up()]);
  try {
    for (const scenario of scenarios) {
      log(`scenario ${scenario.id}: ${scenario.title}`);
      report.scenarios.push(
        await runScenario(scenario, {
          servers,
          rate,
          outageMs,
          warmupMs: 20_000,
          cooldownMs: 20_000,
          drainTimeoutMs: 300_000,
          keepLogsIn: join(out, 'logs'),
          onStoppable: (stop) => {
            stopScenario = stop;
          },
          log,
        }),
      );
      write();
    }
  } finally {
    await Promise.allSettled([servers.kafka.down(), servers.elasticsearch.down()]);
  }
  write();
  process.stdout.write(markdown(report));
  log(`results: ${join(out, 'results.md')} and results.json`);
  if (report.scenarios.some((s) => !s.passed)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`[chaos] failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});

import { cpus, loadavg, totalmem } from 'node:os';
import type { ScenarioResult } from './run';

export interface ChaosReport {
  startedAt: string;
  machine: { cpus: number; model: string; memoryGiB: number; loadAverageAtStart: number };
  settings: { rate: number; outageSeconds: number };
  scenarios: ScenarioResult[];
}

export function machineFacts(): ChaosReport['machine'] {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverageAtStart: Math.round((loadavg()[0] ?? 0) * 10) / 10,
  };
}

const list = (record: Record<string, number>) =>
  Object.entries(record)
    .map(([key, value]) => `${key} ${value}`)
    .join(', ') || '—';

/** The README's reliability table: one row a scenario. */
export function markdown(report: ChaosReport): string {
  const { machine, settings } = report;
  const lines = [
    `Chaos run of ${report.startedAt}: ${settings.rate} events/s offered, faults of ${settings.outageSeconds} s, ` +
      `on ${machine.cpus} × ${machine.model}, ${machine.memoryGiB} GiB (load average ${machine.loadAverageAtStart} at start).`,
    '',
    '| # | scenario | acked events | in ES | missing | stored twice | 503-refused events (retried) | findings expected / topic / ES / Slack | twice | unexpected | recovery | peak MiB | restarts | result |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of report.scenarios) {
    const { events, findings } = s.counts;
    lines.push(
      `| ${s.id} | ${s.title} | ${events.acked} | ${events.stored} | ${events.missing} | ${events.duplicated} | ` +
        `${s.refused503Events} | ${findings.expected} / ${findings.onTopic} / ${findings.inElasticsearch} / ${findings.atSlack} | ` +
        `${findings.esDuplicated + findings.slackDuplicated} | ${findings.unexpected} | ` +
        `${s.recoverySeconds === null ? 'not in 10 min' : `${s.recoverySeconds.toFixed(0)} s`} | ${list(s.peakMemoryMiB)} | ` +
        `${list(s.restarts)}${s.policyExits.length ? ` (by crash policy: ${s.policyExits.join('; ')})` : ''} | ${s.passed ? 'pass' : `FAIL: ${s.problems.join('; ')}`} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

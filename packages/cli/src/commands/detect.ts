import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { type Finding, parseAuditEvent } from '@kaudit/audit-schema';
import {
  createEngine,
  decodeEngineState,
  type EngineState,
  encodeEngineState,
  latestRevisions,
  loadPolicyText,
} from '@kaudit/detection';
import { Presets, SingleBar } from 'cli-progress';
import { type Command, Option } from 'commander';
import { readAuditFiles } from '../read-audit-files';

export interface DetectOptions {
  policy: string;
  output: 'json' | 'table';
  state?: string;
  cluster: string;
  files: string[];
}

export interface DetectIo {
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean };
  stdin?: Readable;
}

export interface DetectSummary {
  events: number;
  badLines: number;
  findings: number;
}

/**
 * `kaudit detect`: the detector's engine over audit log files, for incident response and for trying a
 * policy before deploying it. Findings go to stdout, everything else (progress, bad lines, the summary)
 * to stderr, so `kaudit detect ... > findings.jsonl` captures only findings. Each finding is printed
 * once, as it finally is (its highest revision), when the input ends: the same on every replay.
 */
export async function runDetect(options: DetectOptions, io: DetectIo): Promise<DetectSummary> {
  const policy = loadPolicyText(readFileSync(options.policy, 'utf8'));
  const state = options.state && existsSync(options.state) ? loadState(options.state) : undefined;
  const engine = createEngine(state ? { policy, state } : { policy });
  const files = options.files.length > 0 ? options.files : ['-'];
  const reports: Finding[] = [];
  const summary: DetectSummary = { events: 0, badLines: 0, findings: 0 };
  const emit = (findings: Finding[]) => {
    for (const finding of findings) reports.push(finding);
  };
  const progress = createProgress(files, io.stderr);
  const readOptions = { onBytes: progress.onBytes, ...(io.stdin ? { stdin: io.stdin } : {}) };

  for await (const item of readAuditFiles(files, readOptions)) {
    if ('error' in item) {
      summary.badLines += 1;
      progress.log(`${item.file}:${item.line}: ${item.error.replace(/^line \d+: /, '')}\n`);
      continue;
    }
    const parsed = parseAuditEvent(item.raw);
    if (!parsed.ok) {
      summary.badLines += 1;
      progress.log(`${item.file}:${item.line}: not an audit event (${parsed.reason})\n`);
      continue;
    }
    summary.events += 1;
    // The cluster the input names (log group, resourceId, resource.labels) wins over --cluster.
    emit(engine.process({ cluster: item.cluster ?? options.cluster, event: parsed.event }));
  }
  emit(engine.flush());
  progress.stop();
  const findings = latestRevisions(reports);
  summary.findings = findings.length;
  if (options.output === 'table') io.stdout.write(formatTable(findings));
  else for (const finding of findings) io.stdout.write(`${JSON.stringify(finding)}\n`);
  if (options.state) saveState(options.state, engine.snapshot());
  const stats = engine.stats();
  io.stderr.write(
    `kaudit detect: ${summary.events} events, ${stats.secretReads} secret reads, ${stats.identities} identities, ` +
      `${summary.findings} findings, ${summary.badLines} bad lines\n`,
  );
  return summary;
}

export function registerDetect(program: Command): void {
  program
    .command('detect')
    .description('Run the detection engine over audit log files (JSON lines, EventList JSON) or stdin')
    .requiredOption('--policy <file>', 'detection policy (policies/detection.yaml)')
    .addOption(
      new Option('--output <format>', 'findings format on stdout').choices(['json', 'table']).default('json'),
    )
    .option(
      '--state <file>',
      'load baselines from this file and save them back, so a second run continues the first',
    )
    .option(
      '--cluster <name>',
      'cluster of events whose input names none (a CloudWatch log group, AKS resourceId or GKE resource label does)',
      'default',
    )
    .argument('[files...]', 'audit log files; "-" or none reads stdin')
    .action(async (files: string[], opts: Omit<DetectOptions, 'files'>) => {
      await runDetect({ ...opts, files }, { stdout: process.stdout, stderr: process.stderr });
    });
}

/** Identities in the detector's changelog encoding (state-codec.ts); files with plain objects still read. */
function loadState(path: string): EngineState {
  return decodeEngineState(readFileSync(path, 'utf8'), path);
}

/** Written beside the target and renamed, so an interrupted run never leaves half a state file. */
function saveState(path: string, state: EngineState): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, encodeEngineState(state));
  renameSync(temporary, path);
}

interface Progress {
  onBytes?: (file: string, bytesRead: number) => void;
  log(text: string): void;
  stop(): void;
}

/** A progress bar over the total size of the files, only when stderr is a terminal. */
function createProgress(files: readonly string[], stderr: DetectIo['stderr']): Progress {
  const sizes = files.filter((file) => file !== '-').map((file) => statSync(file).size);
  const total = sizes.reduce((sum, size) => sum + size, 0);
  if (!stderr.isTTY || total === 0 || sizes.length !== files.length) {
    return { log: (text) => stderr.write(text), stop: () => {} };
  }
  const bar = new SingleBar(
    {
      stream: stderr,
      format: 'detect [{bar}] {percentage}% | {value}/{total} bytes | ETA {eta}s',
      etaBuffer: 50,
    },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  const done = new Map<string, number>();
  return {
    onBytes: (file, bytesRead) => {
      done.set(file, bytesRead);
      let sum = 0;
      for (const value of done.values()) sum += value;
      bar.update(sum);
    },
    log: (text) => {
      // Keep the bar on its own line: clear it, write the message, redraw.
      stderr.write(`\r\u001b[2K${text}`);
      bar.render();
    },
    stop: () => bar.stop(),
  };
}

function formatTable(findings: readonly Finding[]): string {
  if (findings.length === 0) return 'no findings\n';
  const rows = findings.map((f) => [
    f.severity,
    f.rule,
    f.identity.username,
    f.sourceIP ?? '-',
    f.firstSeen,
    String(f.count),
    f.summary.length > 120 ? `${f.summary.slice(0, 117)}...` : f.summary,
  ]);
  const header = ['SEVERITY', 'RULE', 'IDENTITY', 'SOURCE IP', 'FIRST SEEN', 'COUNT', 'SUMMARY'];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

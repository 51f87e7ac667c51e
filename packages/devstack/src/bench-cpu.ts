import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where the CPU of a bench:e2e step goes: CPU seconds of each process (the services, Kafka, Elasticsearch
 * and the load generator) between two readings of /proc. Linux only; elsewhere every figure is NaN.
 */

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on every Linux the project runs on). */
const TICKS_PER_SECOND = 100;

export type CpuReading = Map<string, number>;

/** utime + stime of a pid and its descendants, in seconds; 0 for a pid that is gone. */
function processSeconds(pid: number, children: Map<number, number[]>): number {
  let seconds = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const current = stack.pop()!;
    try {
      const stat = readFileSync(`/proc/${current}/stat`, 'utf8');
      // Fields after the command (which may hold spaces) start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      seconds += (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    } catch {
      // Exited between the listing and the read.
    }
    stack.push(...(children.get(current) ?? []));
  }
  return seconds;
}

function childrenByParent(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(parent) ?? [];
      list.push(Number(entry));
      children.set(parent, list);
    } catch {
      // Gone already.
    }
  }
  return children;
}

/** The stack's processes from its pid files (test/stack/stack.sh writes kafka.pid and es.pid). */
export function stackPids(
  stackDir = process.env.KAUDIT_STACK_DIR ?? '/tmp/kaudit-stack',
): Record<string, number> {
  const pids: Record<string, number> = {};
  for (const [name, file] of [
    ['kafka', 'kafka.pid'],
    ['elasticsearch', 'es.pid'],
  ] as const) {
    try {
      const pid = Number(readFileSync(join(stackDir, file), 'utf8').trim());
      if (pid > 0) pids[name] = pid;
    } catch {
      // Not started by stack.sh (an outside Kafka or Elasticsearch): not measured.
    }
  }
  return pids;
}

/** One reading: CPU seconds so far of each named process tree, plus this process (`load generator`). */
export function readCpu(pids: Record<string, number>): CpuReading {
  const reading: CpuReading = new Map();
  const own = process.cpuUsage();
  reading.set('load generator', (own.user + own.system) / 1e6);
  let children: Map<number, number[]>;
  try {
    children = childrenByParent();
  } catch {
    for (const name of Object.keys(pids)) reading.set(name, Number.NaN);
    return reading;
  }
  for (const [name, pid] of Object.entries(pids)) reading.set(name, processSeconds(pid, children));
  return reading;
}

/** Cores used by each process between two readings `seconds` apart, largest first. */
export function coresBetween(
  before: CpuReading,
  after: CpuReading,
  seconds: number,
): Array<[string, number]> {
  return [...after]
    .map(([name, total]): [string, number] => [name, (total - (before.get(name) ?? Number.NaN)) / seconds])
    .sort((a, b) => known(b[1]) - known(a[1]));
}

/** Unknown figures (NaN) sort last. */
const known = (cores: number) => (Number.isNaN(cores) ? -1 : cores);

/** "elasticsearch 0.92, detector 0.31, ..." (cores). */
export function formatCores(cores: Array<[string, number]>): string {
  return cores.map(([name, used]) => `${name} ${Number.isNaN(used) ? '?' : used.toFixed(2)}`).join(', ');
}

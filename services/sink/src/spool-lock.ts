import { readFileSync } from 'node:fs';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AppError } from '@kaudit/service-kit';
import { syncDir } from './spool-file';

export const LOCK_FILE = 'sink.lock';

/** What the lock file holds: enough to tell a live owner from a dead one, and to name it in errors. */
export interface LockOwner {
  pid: number;
  hostname: string;
  /** Linux: the owner's start time in clock ticks since boot (/proc/<pid>/stat), so a reused pid is not taken for it. */
  startTime?: string;
  at: string;
}

export interface SpoolLock {
  file: string;
  /** Removes the lock file, if it is still ours. */
  release(): Promise<void>;
}

export interface SpoolLockDeps {
  pid?: number;
  /** Whether a process with this pid exists (and, where known, started at startTime). */
  isAlive?: (owner: LockOwner) => boolean;
  startTimeOf?: (pid: number) => string | undefined;
}

/** Directories locked by this process: a second open in the same process is refused too. */
const heldHere = new Set<string>();

/**
 * Takes the spool directory for this process: two sinks appending to and draining the same segments
 * would interleave records and move one head over the other's. The lock file is written complete under
 * a temporary name and then hard-linked into place, which, like O_EXCL, fails when the name exists, but
 * never shows another process an empty lock file. A lock whose owner is dead (or is this very pid: a
 * restarted container numbers its processes from 1 again) is stale and taken over.
 */
export async function lockSpoolDir(dir: string, deps: SpoolLockDeps = {}): Promise<SpoolLock> {
  const file = join(dir, LOCK_FILE);
  if (heldHere.has(file)) throw inUse(dir, file, 'this process already (it was opened twice)');
  const pid = deps.pid ?? process.pid;
  const startTimeOf = deps.startTimeOf ?? procStartTime;
  const isAlive = deps.isAlive ?? ((owner: LockOwner) => processAlive(owner, startTimeOf));
  const startTime = startTimeOf(pid);
  const mine: LockOwner = {
    pid,
    hostname: hostname(),
    ...(startTime !== undefined ? { startTime } : {}),
    at: new Date().toISOString(),
  };
  const content = `${JSON.stringify(mine)}\n`;
  const tmp = join(dir, `${LOCK_FILE}.${pid}.${process.hrtime.bigint()}.tmp`);
  await writeFile(tmp, content, { flush: true });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, file);
        await syncDir(dir);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = await readOwner(file);
      if (owner === 'gone') continue; // released between our link and our read
      const stale = owner === undefined || owner.pid === pid || !isAlive(owner);
      if (!stale || attempt >= 5) throw inUse(dir, file, describe(owner));
      await breakStale(file, owner);
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  heldHere.add(file);
  let released = false;
  return {
    file,
    async release() {
      if (released) return;
      released = true;
      heldHere.delete(file);
      // Only our own: after a stale takeover by mistake, the file may be someone else's now.
      const current = await readFile(file, 'utf8').catch(() => undefined);
      if (current === content) await unlink(file).catch(() => undefined);
    },
  };
}

/** Moves the stale lock aside and deletes it only if it is still the one judged stale. */
async function breakStale(file: string, judged: LockOwner | undefined): Promise<void> {
  const aside = `${file}.stale.${process.pid}.${process.hrtime.bigint()}`;
  try {
    await rename(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else removed it
    throw error;
  }
  const moved = await readOwner(aside);
  const same =
    moved === judged ||
    (moved !== 'gone' &&
      moved !== undefined &&
      judged !== undefined &&
      moved.pid === judged.pid &&
      moved.at === judged.at);
  if (!same) {
    // Another sink took the stale lock over between our read and our rename: give it back.
    await link(aside, file).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

/** The owner, undefined when the file is unreadable as a lock, 'gone' when it no longer exists. */
async function readOwner(file: string): Promise<LockOwner | undefined | 'gone'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw error;
  }
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isInteger(value.pid) && (value.pid as number) > 0) return value as LockOwner;
  } catch {
    // fall through: a bare pid, or garbage
  }
  const bare = Number(text.trim());
  return Number.isInteger(bare) && bare > 0 ? { pid: bare, hostname: '', at: '' } : undefined;
}

function processAlive(owner: LockOwner, startTimeOf: (pid: number) => string | undefined): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (owner.startTime === undefined) return true;
  const now = startTimeOf(owner.pid);
  return now === undefined || now === owner.startTime;
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces). */
function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function describe(owner: LockOwner | undefined): string {
  if (owner === undefined) return 'another sink (its lock file is unreadable)';
  const where = owner.hostname ? ` on ${owner.hostname}` : '';
  const since = owner.at ? `, since ${owner.at}` : '';
  return `another sink (pid ${owner.pid}${where}${since})`;
}

function inUse(dir: string, file: string, who: string): AppError {
  return new AppError(
    'KAUDIT_ERR_SPOOL',
    `spool directory ${dir} is in use by ${who}: two sinks sharing one SINK_SPOOL_DIR would corrupt it. ` +
      `Give each sink its own directory; if that process is not a sink, delete ${file}.`,
  );
}

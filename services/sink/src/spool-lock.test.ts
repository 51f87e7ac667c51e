import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@kaudit/service-kit';
import { openSpool } from './spool';
import { LOCK_FILE, lockSpoolDir } from './spool-lock';

const logger = createLogger({ service: 'sink-test', level: 'silent' });
const tempDir = () => mkdtempSync(join(tmpdir(), 'sink-spool-lock-'));
const open = (dir: string) => openSpool({ dir, maxBytes: 1024 * 1024, logger });
const lockOf = (dir: string) => JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number };

/** A pid that existed a moment ago and does not any more. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  return child.pid!;
}

// Filesystem only, no servers. Other processes are stood in for by pids: the parent of this worker
// (alive, not us) and a child that has already exited (dead).
describe('sink > spool > lock', () => {
  it('refuses a second spool on the same directory, naming the directory, and allows it once closed', async () => {
    const dir = tempDir();
    const first = await open(dir);
    expect(lockOf(dir).pid).toBe(process.pid);
    await expect(open(dir)).rejects.toThrow(`spool directory ${dir} is in use by this process already`);
    await first.close();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    const second = await open(dir);
    await second.close();
  });

  it('refuses a directory locked by another live process and names its pid', async () => {
    const dir = tempDir();
    const other = { pid: process.ppid, hostname: 'sink-0', at: '2026-01-01T00:00:00.000Z' };
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify(other));
    const attempt = open(dir);
    await expect(attempt).rejects.toMatchObject({ code: 'KAUDIT_ERR_SPOOL' });
    await expect(attempt).rejects.toThrow(
      `spool directory ${dir} is in use by another sink (pid ${process.ppid} on sink-0`,
    );
    // The other sink's lock is left as it was.
    expect(lockOf(dir)).toEqual(other);
  });

  it.each([
    ['a dead pid', () => JSON.stringify({ pid: deadPid(), hostname: 'x', at: 'then' })],
    ['a bare dead pid', () => `${deadPid()}\n`],
    ['our own pid (a restarted container numbers from 1 again)', () => JSON.stringify({ pid: process.pid })],
    ['an unreadable lock file', () => 'garbage'],
  ])('takes over a stale lock holding %s', async (_name, content) => {
    const dir = tempDir();
    writeFileSync(join(dir, LOCK_FILE), content());
    const spool = await open(dir);
    expect(lockOf(dir).pid).toBe(process.pid);
    expect(readdirSync(dir).filter((f) => f.startsWith(LOCK_FILE))).toEqual([LOCK_FILE]);
    await spool.close();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('takes over a lock whose pid is alive but started at another time (a reused pid)', async () => {
    const dir = tempDir();
    const lockedBy = (startTime: string) =>
      writeFileSync(
        join(dir, LOCK_FILE),
        JSON.stringify({ pid: process.ppid, hostname: 'x', startTime, at: 'then' }),
      );
    // The live parent process "started" at tick 999 (the /proc reader is the only stand-in).
    const startTimeOf = (pid: number) => (pid === process.ppid ? '999' : '1');

    lockedBy('100');
    const lock = await lockSpoolDir(dir, { startTimeOf });
    expect(lockOf(dir).pid).toBe(process.pid);
    await lock.release();

    lockedBy('999');
    await expect(lockSpoolDir(dir, { startTimeOf })).rejects.toThrow(`pid ${process.ppid}`);
  });

  it('does not delete a lock that is no longer its own on release', async () => {
    const dir = tempDir();
    const lock = await lockSpoolDir(dir);
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid }));
    await lock.release();
    expect(lockOf(dir).pid).toBe(process.ppid);
  });
});

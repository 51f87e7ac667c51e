import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The peer of bench:sink and bench:indexer: Benthos v4.27.0 (MIT), built by test/bench/benthos.sh into
 * ~/.cache/kaudit-stack/benthos (outside the repository; none of its code is committed). Returns
 * undefined with the reason when it cannot be built here (no Go toolchain, no module proxy).
 */
export function benthosBinary(): { path: string } | { unavailable: string } {
  const script = resolve(__dirname, '../../../test/bench/benthos.sh');
  const built = spawnSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (built.status !== 0) return { unavailable: built.stderr.trim().split('\n').slice(-3).join(' ') };
  return { path: built.stdout.trim().split('\n').at(-1)! };
}

export interface BenthosProcess {
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Runs Benthos on a YAML config (its own HTTP server off: it would take port 4195 from others). */
export function startBenthos(binary: string, config: string): BenthosProcess {
  const file = join(tmpdir(), `kaudit-benthos-${process.pid}-${Date.now().toString(36)}.yaml`);
  writeFileSync(file, `http:\n  enabled: false\nlogger:\n  level: WARN\n${config}`);
  const child = spawn(binary, ['-c', file], { stdio: ['ignore', 'inherit', 'inherit'] });
  return {
    child,
    // The config file goes with the process (every bench run used to leave one in the temp dir).
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }).finally(() => rmSync(file, { force: true })),
  };
}

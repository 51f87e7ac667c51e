import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { closedPort } from '../test/helpers';

/**
 * The sink as it ships, for the benchmark: `node services/sink/dist/main.js` in a process of its own
 * (so the benchmark's HTTP client does not share its thread, as with the peer), ready once /readyz
 * answers 200. stop() sends SIGTERM and waits for the exit (a pool's workers included).
 */
export async function startSinkProcess(env: Record<string, string>): Promise<{
  port: number;
  /** The value of the first /metrics line starting with `prefix` (0 when absent). */
  counter(prefix: string): Promise<number>;
  stop(): Promise<void>;
}> {
  const port = await closedPort(); // free a moment ago, nobody listening
  const main = join(__dirname, '..', '..', 'dist', 'main.js');
  const child: ChildProcess = spawn(process.execPath, [main], {
    env: { ...process.env, ...env, SINK_PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`${base}/readyz`).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ready) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the sink did not become ready (exit code ${child.exitCode})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    port,
    async counter(prefix) {
      const text = await (await fetch(`${base}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(prefix));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKafka, createLogger, ensureTopics } from '@kaudit/service-kit';
import { buildEvent, stackEnv, uniqueName, waitFor } from '@kaudit/testkit';
import { closedPort, insecureSinkEnv, postAudit, readTopic } from '../test/helpers';

/**
 * SINK_WORKERS=2 as it ships (dist/main.js, real Kafka): both workers take requests on the one port,
 * every acknowledged event is in Kafka, /metrics sums the workers, each worker has its own spool, a
 * Ctrl-C stops every worker gracefully (exit 0), and a worker that dies takes the service down (exit 1).
 */
const main = join(__dirname, '..', 'dist', 'main.js');
const logger = createLogger({ service: 'sink-workers-test', level: 'silent' });
const { kafkaBrokers } = stackEnv();
const kafka = createKafka({ clientId: 'sink-workers-test', brokers: kafkaBrokers, logger });
const dir = mkdtempSync(join(tmpdir(), 'kaudit-sink-workers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Started {
  child: ChildProcess;
  port: number;
  lines: Array<Record<string, unknown>>;
  exit: Promise<number>;
}

async function startPool(name: string): Promise<Started & { eventsTopic: string }> {
  const eventsTopic = `${name}.events`;
  const dlqTopic = `${name}.dlq`;
  await ensureTopics(kafka, [
    { topic: eventsTopic, numPartitions: 3 },
    { topic: dlqTopic, numPartitions: 1 },
  ]);
  const port = await closedPort();
  const child = spawn(process.execPath, [main], {
    env: {
      ...process.env,
      ...insecureSinkEnv({
        brokers: kafkaBrokers.join(','),
        eventsTopic,
        dlqTopic,
        spoolDir: join(dir, name),
        cluster: 'workers',
      }),
      SINK_PORT: String(port),
      SINK_WORKERS: '2',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop()!;
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.resume();
  const exit = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
  await waitFor(
    'both workers started',
    async () => (lines.some((l) => l.msg === 'workers started') ? true : undefined),
    60_000,
  );
  return { child, port, lines, exit, eventsTopic };
}

const batch = (n: number, tag: string) =>
  JSON.stringify({
    kind: 'EventList',
    apiVersion: 'audit.k8s.io/v1',
    items: Array.from({ length: n }, (_, i) => buildEvent({ auditID: `${tag}-${i}` })),
  });

describe('sink > SINK_WORKERS=2', () => {
  it('serves one port from two workers, sums their metrics, and stops both on Ctrl-C', async () => {
    if (!existsSync(main)) throw new Error(`${main} is missing: run pnpm build first`);
    const pool = await startPool(uniqueName('sink-workers'));
    const listening = pool.lines.filter((l) => l.msg === 'sink listening').map((l) => l.worker);
    expect(listening.sort()).toEqual([0, 1]);
    expect(existsSync(join(dir, pool.eventsTopic.replace(/\.events$/, ''), 'worker-1'))).toBe(true);

    // A new connection per request: the primary hands connections to the workers in turn.
    const requests = 12;
    for (let r = 0; r < requests; r++) {
      const answer = await postAudit({ port: pool.port, body: batch(25, `r${r}`) });
      expect(answer.status).toBe(200);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${pool.port}/metrics`)).text();
    expect(metrics).toMatch(/^kaudit_sink_requests_total\{status="200",service="sink"\} 12$/m);
    expect(metrics).toMatch(/^kaudit_sink_events_accepted_total\{service="sink"\} 300$/m);
    const messages = await readTopic(kafka, pool.eventsTopic);
    expect(
      new Set(messages.map((m) => (JSON.parse(m.value) as { event: { auditID: string } }).event.auditID))
        .size,
    ).toBe(300);

    pool.child.kill('SIGINT');
    expect(await pool.exit).toBe(0);
    const stopped = pool.lines
      .filter((l) => l.msg === 'stopped' && l.worker !== undefined)
      .map((l) => l.worker);
    expect(stopped.sort()).toEqual([0, 1]);
  }, 120_000);

  it('exits 1 when a worker dies under it', async () => {
    const pool = await startPool(uniqueName('sink-workers-die'));
    const worker = pool.lines.find((l) => l.msg === 'sink listening' && l.worker === 1)!;
    process.kill(worker.pid as number, 'SIGKILL');
    expect(await pool.exit).toBe(1);
    expect(pool.lines.some((l) => l.level === 'fatal' && /worker 1 exited/.test(String(l.msg)))).toBe(true);
  }, 120_000);
});

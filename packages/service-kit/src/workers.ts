import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Liveness } from './liveness';
import type { Logger } from './logger';

/**
 * A service on more than one core (the sink's SINK_WORKERS): the primary process forks `count` workers
 * with node:cluster, which share the listening port (the primary hands out connections), and does no
 * work of its own. The protocol between them, over cluster's IPC channel:
 * - a worker sends STARTED once its start() is done (defineService does it); the primary's start
 *   resolves when every worker has, and fails when one exits before;
 * - a worker's /metrics (createOpsRouter, through poolMetrics) asks the primary (METRICS), which collects every worker's registry through
 *   prom-client's AggregatorRegistry (counters summed) and answers with the text;
 * - the primary's stop sends SHUTDOWN to every worker; each runs its own shutdown steps and exits.
 * A worker ignores SIGINT (Ctrl-C in a terminal reaches the whole process group: the primary decides)
 * and shuts down when the primary goes away; SIGTERM sent to a worker itself still stops it gracefully.
 * A worker that exits while the primary is not stopping is fatal for the whole service (it exits 1 and
 * is restarted like any dead process): each worker has state of its own on disk (the sink's spool),
 * picked up again on the restart.
 */

/** The worker's index (0..count-1), in the environment of each forked worker. */
export const WORKER_ENV = 'KAUDIT_WORKER';

const STARTED = 'kaudit:started';
const SHUTDOWN = 'kaudit:shutdown';
const METRICS = 'kaudit:metrics';

interface Message {
  type?: string;
  id?: number;
  text?: string;
  error?: string;
}

/** This process's worker index, or undefined when it is not a worker of a pool. */
export function workerIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(process.env[WORKER_ENV]);
  return Number.isInteger(index) && index >= 0 ? index : undefined;
}

/** Tells the primary this worker has started (no-op outside a pool). */
export function reportStarted(): void {
  if (cluster.isWorker && process.send) process.send({ type: STARTED });
}

/**
 * A worker's side of shutdown (registerShutdown calls it): SIGINT ignored, the primary's SHUTDOWN and
 * the loss of the primary run `shutdown`. Returns the signals the worker still handles itself.
 */
export function workerSignals(shutdown: (reason: string, exitCode?: number) => void): NodeJS.Signals[] {
  if (!cluster.isWorker) return ['SIGTERM', 'SIGINT'];
  process.on('SIGINT', () => undefined);
  process.on('message', (message: Message) => {
    if (message?.type === SHUTDOWN) shutdown('the primary stops the workers');
  });
  process.on('disconnect', () => shutdown('the primary process went away', 1));
  return ['SIGTERM'];
}

/**
 * The /metrics text of a worker: every worker's registry aggregated by the primary. Outside a pool,
 * the registry's own text.
 */
export function poolMetrics(registry: Registry): () => Promise<string> {
  if (!cluster.isWorker) return () => registry.metrics();
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // installs prom-client's worker-side listener
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  let next = 0;
  process.on('message', (message: Message) => {
    if (message?.type !== METRICS || message.id === undefined) return;
    const request = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) request?.reject(new Error(message.error));
    else request?.resolve(message.text ?? '');
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      process.send?.({ type: METRICS, id });
    });
}

export interface WorkerPool {
  /** SHUTDOWN to every worker, then waits for all to exit; rejects when one exits non-zero. */
  stop(): Promise<void>;
}

/**
 * Forks `count` workers of the running script (each gets WORKER_ENV and `env(index)`), and resolves once
 * every one has reported STARTED.
 */
export async function startWorkerPool(options: {
  count: number;
  logger: Logger;
  liveness?: Pick<Liveness, 'fatal'>;
  env?: (index: number) => Record<string, string>;
}): Promise<WorkerPool> {
  const logger = options.logger.child({ component: 'workers' });
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  const workers: Worker[] = [];
  const exits: Array<Promise<number>> = [];

  cluster.on('message', (worker, message: Message) => {
    if (message?.type !== METRICS || message.id === undefined) return;
    const { id } = message;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: METRICS, id, text }),
      (err: Error) => worker.isConnected() && worker.send({ type: METRICS, id, error: err.message }),
    );
  });

  const started: Array<Promise<void>> = [];
  for (let index = 0; index < options.count; index++) {
    const worker = cluster.fork({ ...options.env?.(index), [WORKER_ENV]: String(index) });
    workers.push(worker);
    let isStarted = false;
    const exit = new Promise<number>((resolve) =>
      worker.once('exit', (code, signal) => {
        const exitCode = code ?? (signal ? 1 : 0);
        if (!stopping && isStarted) {
          options.liveness?.fatal(`worker ${index} exited (${signal ?? `code ${code}`})`);
        }
        resolve(exitCode);
      }),
    );
    exits.push(exit);
    started.push(
      new Promise<void>((resolve, reject) => {
        worker.on('message', (message: Message) => {
          if (message?.type !== STARTED) return;
          isStarted = true;
          resolve();
        });
        void exit.then((code) => {
          if (!isStarted) reject(new Error(`worker ${index} exited with code ${code} while starting`));
        });
      }),
    );
  }

  const stop = async () => {
    stopping = true;
    for (const worker of workers) if (worker.isConnected()) worker.send({ type: SHUTDOWN });
    const codes = await Promise.all(exits);
    const failed = codes.map((code, index) => ({ code, index })).filter(({ code }) => code !== 0);
    logger.info({ codes }, 'workers stopped');
    if (failed.length > 0) {
      throw new Error(`workers ${failed.map((f) => `${f.index} (code ${f.code})`).join(', ')} failed`);
    }
  };

  try {
    await Promise.all(started);
  } catch (err) {
    // One failed: the others are stopped (their own steps run), and the start fails with its reason.
    await stop().catch(() => undefined);
    throw err;
  }
  logger.info({ workers: options.count }, 'workers started');
  return { stop };
}

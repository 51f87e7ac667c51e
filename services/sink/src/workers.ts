import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Liveness, Logger, WorkerPool } from '@kaudit/service-kit';
import { startWorkerPool } from '@kaudit/service-kit';
import type { SinkConfig } from './config';
import { holdsRecords } from './spool-recovery';

/**
 * SINK_WORKERS > 1: the sink on several cores (service-kit workers.ts). Each worker is a whole sink —
 * its own Kafka producer, spool and drainer — on the shared port. Worker 0 uses SINK_SPOOL_DIR itself
 * (what a single sink used, so an upgrade drains what it left), worker i its subdirectory worker-<i>;
 * each may fill SINK_SPOOL_MAX_BYTES / workers, so the volume's budget holds. The Event Hubs bridge
 * runs in worker 0 only.
 */
export function workerConfig(config: SinkConfig, index: number, count: number): SinkConfig {
  return {
    ...config,
    workers: count,
    spoolDir: workerSpoolDir(config.spoolDir, index),
    spoolMaxBytes: Math.floor(config.spoolMaxBytes / count),
    eventHub: index === 0 ? config.eventHub : undefined,
  };
}

export const workerSpoolDir = (dir: string, index: number) =>
  index === 0 ? dir : join(dir, `worker-${index}`);

const WORKER_DIR = /^worker-(\d+)$/;

/**
 * How many workers to start: SINK_WORKERS, or more while a spool of a higher-numbered worker (from a
 * run with more workers) still holds events — nothing spooled is left behind when the count is lowered.
 */
export async function workerCount(config: SinkConfig, logger: Logger): Promise<number> {
  let names: string[] = [];
  try {
    names = await readdir(config.spoolDir);
  } catch {
    // no spool yet
  }
  let count = config.workers;
  for (const name of names) {
    const index = Number(WORKER_DIR.exec(name)?.[1] ?? Number.NaN);
    if (!(index >= count)) continue;
    if (await holdsRecords(join(config.spoolDir, name), logger)) count = index + 1;
  }
  if (count > config.workers) {
    logger.warn(
      { SINK_WORKERS: config.workers, workers: count },
      `the spool of worker ${count - 1} still holds events: starting ${count} workers until it is drained`,
    );
  }
  return count;
}

/** The primary of a SINK_WORKERS pool: forks the workers and stops them. */
export async function startSinkPool(
  config: SinkConfig,
  logger: Logger,
  liveness: Liveness,
): Promise<WorkerPool> {
  const count = await workerCount(config, logger);
  return startWorkerPool({
    count,
    logger,
    liveness,
    env: () => ({ SINK_WORKERS: String(count) }),
  });
}

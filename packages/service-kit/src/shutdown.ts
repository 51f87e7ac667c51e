import type { Logger } from 'pino';
import type { Liveness } from './liveness';
import { workerSignals } from './workers';

export interface ShutdownStep {
  name: string;
  run: () => Promise<void>;
}

/**
 * On SIGTERM/SIGINT: run the steps in order (stop taking work, finish in-flight work, flush, disconnect),
 * log each, then exit 0 — or 1 when a step fails or the whole sequence exceeds timeoutMs. A second
 * signal while shutting down exits at once (a worker of a pool has its own signals: workers.ts). With
 * `liveness`, a fatal error (liveness.ts) runs the same steps and exits 1. Returns the function so
 * callers can trigger it themselves.
 */
export function registerShutdown(options: {
  logger: Logger;
  steps: ShutdownStep[];
  timeoutMs?: number;
  exit?: (code: number) => void;
  liveness?: Pick<Liveness, 'onFatal'>;
}): (reason: string, exitCode?: number) => Promise<void> {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const logger = options.logger.child({ component: 'shutdown' });
  let running: Promise<void> | undefined;

  const shutdown = (reason: string, exitCode = 0): Promise<void> => {
    if (running) return running;
    logger.info({ reason, exitCode }, 'shutting down');
    const timeoutMs = options.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out');
      exit(1);
    }, timeoutMs);
    timer.unref();
    running = (async () => {
      let code = exitCode;
      for (const step of options.steps) {
        const started = Date.now();
        try {
          await step.run();
          logger.info({ step: step.name, ms: Date.now() - started }, 'shutdown step done');
        } catch (err) {
          code = 1;
          logger.error({ step: step.name, err }, 'shutdown step failed');
        }
      }
      clearTimeout(timer);
      logger.info({ code }, 'stopped');
      exit(code);
    })();
    return running;
  };

  options.liveness?.onFatal((reason) => void shutdown(`fatal: ${reason}`, 1));
  // A pool's worker (workers.ts) leaves SIGINT to its primary and also stops when the primary says so.
  for (const signal of workerSignals((reason, code) => void shutdown(reason, code))) {
    process.on(signal, () => {
      if (running) {
        logger.warn({ signal }, 'second signal: exiting now');
        exit(1);
        return;
      }
      void shutdown(signal);
    });
  }
  return shutdown;
}

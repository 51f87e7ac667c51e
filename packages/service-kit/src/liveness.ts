import type { Logger } from './logger';

/**
 * The crash and health policy, one for all four services (docs/operations.md):
 * - Dead: something the process cannot recover from by itself — a kafkajs consumer that crashed and
 *   that kafkajs will not restart (CRASH with restart: false: a non-retriable error, or its restarts
 *   given up), or a fatal error a service declares (the sink's listener closing under it). /healthz
 *   answers 503 from then on, the reason is logged once at fatal, and the service's shutdown runs and
 *   exits 1 (registerShutdown's `liveness` option), so Docker or Kubernetes restarts it.
 * - Not ready: transient trouble — a consumer crash kafkajs restarts (restart: true), Kafka or
 *   Elasticsearch unreachable, writes being retried, a spool fault. /readyz answers 503, /healthz 200:
 *   an orchestrator takes the instance out of rotation and waits instead of killing it.
 */
export interface Liveness {
  /** False once the process is dead for good. */
  alive(): boolean;
  /** Why it died, for /healthz and the log. */
  reason(): string | undefined;
  /** Declares the process dead (the first call wins; later ones are logged at warn only). */
  fatal(reason: string, error?: unknown): void;
  /** Called once, on the first fatal (or at once if already dead). */
  onFatal(handler: (reason: string) => void): void;
  /** kafkajs: CRASH with restart: false is fatal; restart: true is transient (logged, readiness covers it). */
  watchConsumer(consumer: CrashEmitter, name: string): void;
}

/** The part of a kafkajs Consumer the policy needs, so tests can pass an emitter of their own. */
export interface CrashEmitter {
  events: { CRASH: string };
  on(
    event: string,
    listener: (event: { payload: { error: Error; restart: boolean; groupId?: string } }) => void,
  ): unknown;
}

/**
 * A service's own line for a consumer crash: a warning when kafkajs restarts the consumer (a retriable
 * error, e.g. a coordinator still loading on a fresh broker), an error when it does not (watchConsumer
 * then makes the process dead).
 */
export function logConsumerCrash(logger: Logger, payload: { error: Error; restart: boolean }): void {
  logger[payload.restart ? 'warn' : 'error'](
    { err: payload.error, restart: payload.restart },
    'consumer crashed',
  );
}

export function createLiveness(options: { logger: Logger }): Liveness {
  const logger = options.logger.child({ component: 'liveness' });
  let deadReason: string | undefined;
  const handlers: Array<(reason: string) => void> = [];

  const liveness: Liveness = {
    alive: () => deadReason === undefined,
    reason: () => deadReason,
    fatal(reason, error) {
      if (deadReason !== undefined) {
        logger.warn({ err: error, reason }, 'another fatal error after the first');
        return;
      }
      deadReason = reason;
      logger.fatal({ err: error, reason }, `dead: ${reason}; /healthz fails and the process exits 1`);
      for (const handler of handlers.splice(0)) handler(reason);
    },
    onFatal(handler) {
      if (deadReason !== undefined) handler(deadReason);
      else handlers.push(handler);
    },
    watchConsumer(consumer, name) {
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (payload.restart) {
          logger.warn({ err: payload.error, consumer: name }, `${name} crashed; kafkajs restarts it`);
          return;
        }
        liveness.fatal(`${name} crashed and will not be restarted: ${payload.error.message}`, payload.error);
      });
    },
  };
  return liveness;
}

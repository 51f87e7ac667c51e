import {
  createKafka,
  createLiveness,
  createStartup,
  type Liveness,
  type Logger,
  type ShutdownStep,
  startOpsServer,
  verifyKafkaSecurity,
} from '@kaudit/service-kit';
import { type Alerter, createAlerter } from './alerter';
import type { AlerterConfig } from './config';
import { configuredDestinations } from './destinations';
import { createAlerterLogger } from './logger';
import { createAlerterMetrics } from './metrics';

export interface AlerterService {
  logger: Logger;
  liveness: Liveness;
  /** In order: drain deliveries (at most ALERTER_DRAIN_TIMEOUT) and leave the group, close the ops server. */
  steps: ShutdownStep[];
  timeoutMs: number;
  start(): Promise<void>;
}

/**
 * The alerter's wiring: Kafka client (security checked first), liveness, the destinations built from
 * the secrets config.ts read, the consumer loop (alerter.ts) and the ops server.
 */
export function createAlerterService(
  config: AlerterConfig,
  deps: { logger?: Logger; liveness?: Liveness } = {},
): AlerterService {
  const { env } = config;
  const logger = deps.logger ?? createAlerterLogger(env.LOG_LEVEL);
  const liveness = deps.liveness ?? createLiveness({ logger });
  const metrics = createAlerterMetrics();
  const kafka = createKafka({
    clientId: 'kaudit-alerter',
    brokers: env.KAFKA_BROKERS,
    security: config.kafkaSecurity,
    logger,
  });
  let alerter: Alerter | undefined;
  let ops: { close(): Promise<void> } | undefined;
  return {
    logger,
    liveness,
    timeoutMs: env.ALERTER_DRAIN_TIMEOUT + 20_000,
    steps: [
      { name: 'alerter', run: async () => alerter?.stop({ drainTimeoutMs: env.ALERTER_DRAIN_TIMEOUT }) },
      { name: 'ops server', run: async () => ops?.close() },
    ],
    async start() {
      await verifyKafkaSecurity(kafka, config.kafkaSecurity);
      const running = createAlerter({
        startup: createStartup({ logger, timeoutMs: env.KAFKA_STARTUP_TIMEOUT }),
        liveness,
        kafka,
        logger,
        metrics,
        routing: config.routing,
        destinations: configuredDestinations(config),
        options: config.options,
      });
      alerter = running;
      ops = await startOpsServer({
        port: env.ALERTER_PORT,
        registry: metrics.registry,
        isReady: running.ready,
        liveness,
        logger,
      });
      await running.start();
    },
  };
}

import {
  createStartup,
  defineService,
  type Service,
  type ServiceDeps,
  startOpsServer,
} from '@kaudit/service-kit';
import { createAlerter } from './alerter';
import type { AlerterConfig } from './config';
import { configuredDestinations } from './destinations';
import { createAlerterLogger } from './logger';
import { createAlerterMetrics } from './metrics';

/**
 * The alerter's wiring: Kafka client (security checked first), the destinations built from the secrets
 * config.ts read, the consumer loop (alerter.ts) and the ops server. Shutdown: drain deliveries (at most
 * ALERTER_DRAIN_TIMEOUT) and leave the group, then close the ops server.
 */
export function createAlerterService(config: AlerterConfig, deps: ServiceDeps = {}): Service {
  const { env } = config;
  return defineService({
    name: 'alerter',
    deps,
    createLogger: () => createAlerterLogger(env.LOG_LEVEL),
    timeoutMs: env.ALERTER_DRAIN_TIMEOUT + 20_000,
    async start({ logger, liveness, onStop, kafka }) {
      const metrics = createAlerterMetrics();
      const alerter = createAlerter({
        startup: createStartup({ logger, timeoutMs: env.KAFKA_STARTUP_TIMEOUT }),
        liveness,
        kafka: await kafka({ brokers: env.KAFKA_BROKERS, security: config.kafkaSecurity }),
        logger,
        metrics,
        routing: config.routing,
        destinations: configuredDestinations(config),
        options: config.options,
      });
      onStop('alerter', () => alerter.stop({ drainTimeoutMs: env.ALERTER_DRAIN_TIMEOUT }));
      const ops = await startOpsServer({
        port: env.ALERTER_PORT,
        registry: metrics.registry,
        isReady: alerter.ready,
        liveness,
        logger,
      });
      onStop('ops server', () => ops.close());
      await alerter.start();
    },
  });
}

import {
  createKafka,
  createLiveness,
  createStartup,
  registerShutdown,
  runService,
  startOpsServer,
  suppressKafkajsTimeoutWarning,
  verifyKafkaSecurity,
} from '@kaudit/service-kit';
import { createAlerter } from './alerter';
import { loadAlerterConfig } from './config';
import { createAlerterLogger } from './logger';
import { createAlerterMetrics } from './metrics';

suppressKafkajsTimeoutWarning();

runService('alerter', async () => {
  const config = loadAlerterConfig();
  const logger = createAlerterLogger(config.env.LOG_LEVEL);
  const metrics = createAlerterMetrics();
  const kafka = createKafka({
    clientId: 'kaudit-alerter',
    brokers: config.env.KAFKA_BROKERS,
    security: config.kafkaSecurity,
    logger,
  });
  await verifyKafkaSecurity(kafka, config.kafkaSecurity);
  const liveness = createLiveness({ logger });
  const alerter = createAlerter({
    startup: createStartup({ logger, timeoutMs: config.env.KAFKA_STARTUP_TIMEOUT }),
    liveness,
    kafka,
    logger,
    metrics,
    routing: config.routing,
    destinations: config.destinations,
    options: config.options,
  });
  const ops = await startOpsServer({
    port: config.env.ALERTER_PORT,
    registry: metrics.registry,
    isReady: alerter.ready,
    liveness,
    logger,
  });
  registerShutdown({
    logger,
    liveness,
    timeoutMs: config.env.ALERTER_DRAIN_TIMEOUT + 20_000,
    steps: [
      { name: 'alerter', run: () => alerter.stop({ drainTimeoutMs: config.env.ALERTER_DRAIN_TIMEOUT }) },
      { name: 'ops server', run: () => ops.close() },
    ],
  });
  await alerter.start();
});

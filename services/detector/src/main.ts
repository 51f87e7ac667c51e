import {
  createKafka,
  createLiveness,
  createLogger,
  createStartup,
  registerShutdown,
  runService,
  startOpsServer,
  suppressKafkajsTimeoutWarning,
  verifyKafkaSecurity,
} from '@kaudit/service-kit';
import { loadDetectorConfig } from './config';
import { createDetector } from './detector';
import { createDetectorMetrics } from './metrics';

suppressKafkajsTimeoutWarning();

runService('detector', async () => {
  const config = loadDetectorConfig();
  const { env, policy } = config;
  const logger = createLogger({ service: 'detector', level: env.LOG_LEVEL });
  const metrics = createDetectorMetrics();
  const kafka = createKafka({
    clientId: 'kaudit-detector',
    brokers: env.KAFKA_BROKERS,
    security: config.kafkaSecurity,
    logger,
  });
  await verifyKafkaSecurity(kafka, config.kafkaSecurity);
  const liveness = createLiveness({ logger });
  const detector = createDetector({
    kafka,
    logger,
    metrics,
    policy,
    startup: createStartup({ logger, timeoutMs: env.KAFKA_STARTUP_TIMEOUT }),
    liveness,
    options: {
      eventsTopic: env.AUDIT_EVENTS_TOPIC,
      alertsTopic: env.AUDIT_ALERTS_TOPIC,
      dlqTopic: env.AUDIT_DLQ_TOPIC,
      stateTopic: env.DETECTOR_STATE_TOPIC,
      groupId: env.DETECTOR_GROUP_ID,
      instanceId: env.DETECTOR_INSTANCE_ID,
      idleFlushMs: env.DETECTOR_IDLE_FLUSH,
      transactionTimeoutMs: env.DETECTOR_TRANSACTION_TIMEOUT,
      sessionTimeoutMs: env.DETECTOR_SESSION_TIMEOUT,
    },
  });
  const ops = await startOpsServer({
    port: env.DETECTOR_PORT,
    registry: metrics.registry,
    isReady: detector.ready,
    liveness,
    logger,
  });
  registerShutdown({
    logger,
    liveness,
    steps: [
      { name: 'detector', run: () => detector.stop() },
      { name: 'ops server', run: () => ops.close() },
    ],
  });
  await detector.start();
});

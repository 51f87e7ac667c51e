import {
  createKafka,
  createLiveness,
  createLogger,
  createStartup,
  type Liveness,
  type Logger,
  type ShutdownStep,
  startOpsServer,
  verifyKafkaSecurity,
} from '@kaudit/service-kit';
import type { DetectorConfig } from './config';
import { createDetector, type Detector } from './detector';
import { createDetectorMetrics } from './metrics';

export interface DetectorService {
  logger: Logger;
  liveness: Liveness;
  /** In order: finish the batch in flight and leave the group, then close the ops server. */
  steps: ShutdownStep[];
  start(): Promise<void>;
}

/**
 * The detector's wiring: Kafka client (security checked first), liveness, the consumer loop
 * (detector.ts) and the ops server. main.ts registers the shutdown steps, then calls start().
 */
export function createDetectorService(
  config: DetectorConfig,
  deps: { logger?: Logger; liveness?: Liveness } = {},
): DetectorService {
  const { env, policy } = config;
  const logger = deps.logger ?? createLogger({ service: 'detector', level: env.LOG_LEVEL });
  const liveness = deps.liveness ?? createLiveness({ logger });
  const metrics = createDetectorMetrics();
  const kafka = createKafka({
    clientId: 'kaudit-detector',
    brokers: env.KAFKA_BROKERS,
    security: config.kafkaSecurity,
    logger,
  });
  let detector: Detector | undefined;
  let ops: { close(): Promise<void> } | undefined;
  return {
    logger,
    liveness,
    steps: [
      { name: 'detector', run: async () => detector?.stop() },
      { name: 'ops server', run: async () => ops?.close() },
    ],
    async start() {
      await verifyKafkaSecurity(kafka, config.kafkaSecurity);
      const running = createDetector({
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
      detector = running;
      ops = await startOpsServer({
        port: env.DETECTOR_PORT,
        registry: metrics.registry,
        isReady: running.ready,
        liveness,
        logger,
      });
      await running.start();
    },
  };
}

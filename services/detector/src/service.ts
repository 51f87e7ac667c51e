import {
  createStartup,
  defineService,
  type Service,
  type ServiceDeps,
  startOpsServer,
} from '@kaudit/service-kit';
import type { DetectorConfig } from './config';
import { createDetector } from './detector';
import { createDetectorMetrics } from './metrics';

/**
 * The detector's wiring: Kafka client (security checked first), the consumer loop (detector.ts) and the
 * ops server. Shutdown: finish the batch in flight and leave the group, then close the ops server.
 */
export function createDetectorService(config: DetectorConfig, deps: ServiceDeps = {}): Service {
  const { env, policy } = config;
  return defineService({
    name: 'detector',
    logLevel: env.LOG_LEVEL,
    deps,
    async start({ logger, liveness, onStop, kafka }) {
      const metrics = createDetectorMetrics();
      const detector = createDetector({
        kafka: await kafka({ brokers: env.KAFKA_BROKERS, security: config.kafkaSecurity }),
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
          batchWaitMs: env.DETECTOR_BATCH_WAIT_MS,
          maxBatchBytes: env.DETECTOR_MAX_BATCH_BYTES,
        },
      });
      onStop('detector', () => detector.stop());
      const ops = await startOpsServer({
        port: env.DETECTOR_PORT,
        registry: metrics.registry,
        isReady: detector.ready,
        liveness,
        logger,
      });
      onStop('ops server', () => ops.close());
      await detector.start();
    },
  });
}

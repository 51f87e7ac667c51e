import { applyResources, createEsClient, esAccessProblem } from '@kaudit/es-resources';
import {
  ConfigError,
  createStartup,
  defineService,
  ensureTopics,
  isTransientStartupError,
  type Liveness,
  type Logger,
  type Service,
  type ServiceDeps,
  serviceKafka,
  startOpsServer,
} from '@kaudit/service-kit';
import type { Kafka } from 'kafkajs';
import { describeConfig, type IndexerConfig } from './config';
import { createDeadLetterPublisher } from './dead-letters';
import { createIndexer } from './indexer';
import { createIndexerMetrics } from './metrics';

export interface IndexerService {
  opsPort: number;
  isReady: () => boolean;
  acknowledged: () => number;
  /** The shutdown steps, in order: stop consuming (leaving the group), then flush and disconnect. */
  steps: Array<{ name: string; run: () => Promise<void> }>;
  stop: () => Promise<void>;
}

/**
 * Builds and starts the indexer: health/metrics first (so an orchestrator sees it alive while it
 * waits), then the Elasticsearch resources, the topics, the dead-letter producer and the consumer,
 * each retried while Elasticsearch or Kafka is still coming up, within one KAFKA_STARTUP_TIMEOUT.
 */
export async function startIndexerService(
  config: IndexerConfig,
  logger: Logger,
  /** kafka: a client of the caller's (tests); default one from the config. */
  options: { liveness?: Liveness; kafka?: Kafka } = {},
): Promise<IndexerService> {
  logger.info({ config: describeConfig(config) }, 'starting indexer');
  const metrics = createIndexerMetrics();
  const client = createEsClient(config.es);
  const kafka =
    options.kafka ??
    (await serviceKafka({
      service: 'indexer',
      brokers: config.kafkaBrokers,
      security: config.kafkaSecurity,
      logger,
    }));
  let indexer: ReturnType<typeof createIndexer> | undefined;
  const ops = await startOpsServer({
    port: config.port,
    host: config.host,
    registry: metrics.registry,
    isReady: () => indexer?.isReady() ?? false,
    ...(options.liveness ? { liveness: options.liveness } : {}),
    logger,
  });

  const startup = createStartup({ logger, timeoutMs: config.kafkaStartupTimeoutMs });
  const esLogger = logger.child({ component: 'es-resources' });
  // A template or policy Elasticsearch refuses (4xx) is a bug to surface at once, not to wait out; an
  // untrusted certificate, refused credentials or a missing privilege never heal by waiting either.
  try {
    await startup.step(
      'apply the Elasticsearch resources',
      () =>
        applyResources(client, {
          policiesDir: config.policiesDir,
          namespace: config.namespace,
          retention: config.retention,
          numberOfReplicas: config.numberOfReplicas,
          ilm: config.ilm,
          logger: esLogger,
        }),
      {
        code: 'KAUDIT_ERR_ELASTICSEARCH',
        isRetriable: (error) =>
          esAccessProblem(error, config.es) === undefined && isTransientStartupError(error),
      },
    );
  } catch (error) {
    await Promise.allSettled([ops.close(), client.close()]);
    const cause = (error as { cause?: unknown }).cause ?? error;
    const problem = esAccessProblem(cause, config.es) ?? esAccessProblem(error, config.es);
    throw problem ? new ConfigError([problem]) : error;
  }

  metrics.elasticsearchUp.set(1);
  await startup.step('ensure topics', () =>
    ensureTopics(kafka, [
      { topic: config.eventsTopic },
      { topic: config.alertsTopic },
      { topic: config.dlqTopic },
    ]),
  );
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await startup.step('connect the dead-letter producer', () => producer.connect());
  indexer = createIndexer({
    kafka,
    client,
    deadLetters: createDeadLetterPublisher(producer, config.dlqTopic),
    logger,
    metrics,
    config,
    ...(options.liveness ? { liveness: options.liveness } : {}),
  });
  const starting = indexer;
  await startup.step('start the consumer', () => starting.start());
  const running = indexer;

  const steps = [
    { name: 'consumer', run: () => running.stop() },
    { name: 'dead-letter producer', run: () => producer.disconnect() },
    { name: 'elasticsearch client', run: () => client.close() },
    { name: 'ops server', run: () => ops.close() },
  ];
  return {
    opsPort: ops.port,
    isReady: running.isReady,
    acknowledged: running.acknowledged,
    steps,
    stop: async () => {
      for (const step of steps) await step.run();
    },
  };
}

/** What main.ts runs: startIndexerService (above) inside the service shell; its steps become the shutdown. */
export function createIndexerService(config: IndexerConfig, deps: ServiceDeps = {}): Service {
  return defineService({
    name: 'indexer',
    logLevel: config.logLevel,
    deps,
    async start({ logger, liveness, onStop }) {
      const service = await startIndexerService(config, logger, { liveness });
      for (const step of service.steps) onStop(step.name, step.run);
      logger.info({ opsPort: service.opsPort }, 'indexer running');
    },
  });
}

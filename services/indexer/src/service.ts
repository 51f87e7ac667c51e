import { errors } from '@elastic/elasticsearch';
import { applyResources, createEsClient, esAccessProblem } from '@kaudit/es-resources';
import {
  ConfigError,
  createKafka,
  ensureTopics,
  type Logger,
  retry,
  startOpsServer,
  verifyKafkaSecurity,
} from '@kaudit/service-kit';
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
 * waits), then the Elasticsearch resources (retried until the cluster answers), the topics, the
 * dead-letter producer and the consumer.
 */
export async function startIndexerService(
  config: IndexerConfig,
  logger: Logger,
  options: { onFatal?: (error: Error) => void } = {},
): Promise<IndexerService> {
  logger.info({ config: describeConfig(config) }, 'starting indexer');
  const metrics = createIndexerMetrics();
  const client = createEsClient(config.es);
  const kafka = createKafka({
    clientId: 'kaudit-indexer',
    brokers: config.kafkaBrokers,
    security: config.kafkaSecurity,
    logger,
  });
  await verifyKafkaSecurity(kafka, config.kafkaSecurity);
  let indexer: ReturnType<typeof createIndexer> | undefined;
  const ops = await startOpsServer({
    port: config.port,
    host: config.host,
    registry: metrics.registry,
    isReady: () => indexer?.isReady() ?? false,
    logger,
  });

  const esLogger = logger.child({ component: 'es-resources' });
  try {
    await retry(
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
        retries: Number.MAX_SAFE_INTEGER,
        initialDelayMs: 500,
        maxDelayMs: 15_000,
        // Only "no answer" is worth waiting for; a template Elasticsearch refuses is a bug to surface, and
        // an untrusted certificate, refused credentials or a missing privilege never heal by waiting.
        isRetriable: (error) =>
          esAccessProblem(error, config.es) === undefined &&
          (!(error instanceof errors.ResponseError) || (error.meta.statusCode ?? 0) >= 500),
        onRetry: (err, attempt, delayMs) =>
          esLogger.warn({ err, attempt, delayMs }, 'Elasticsearch not ready; retrying'),
      },
    );
  } catch (error) {
    await Promise.allSettled([ops.close(), client.close()]);
    const problem = esAccessProblem(error, config.es);
    throw problem ? new ConfigError([problem]) : error;
  }

  metrics.elasticsearchUp.set(1);
  await ensureTopics(kafka, [
    { topic: config.eventsTopic },
    { topic: config.alertsTopic },
    { topic: config.dlqTopic },
  ]);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  indexer = createIndexer({
    kafka,
    client,
    deadLetters: createDeadLetterPublisher(producer, config.dlqTopic),
    logger,
    metrics,
    config,
    onFatal: options.onFatal,
  });
  await indexer.start();
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

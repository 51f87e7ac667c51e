import { createMetrics, type Metrics } from '@kaudit/service-kit';

/**
 * Every indexer metric, in one place. Counters follow the house convention (received / sent /
 * errors{stage,type} / dropped{reason}); a retried bulk item is a retry, never a drop.
 */
export function createIndexerMetrics(metrics: Metrics = createMetrics({ service: 'indexer' })) {
  return {
    registry: metrics.registry,
    received: metrics.counter({
      name: 'kaudit_indexer_received_total',
      help: 'Kafka messages received, by topic',
      labelNames: ['topic'],
      deprecatedNames: ['kaudit_indexer_messages_received_total'],
    }),
    documents: metrics.counter({
      name: 'kaudit_indexer_sent_total',
      help: 'Documents Elasticsearch acknowledged: created, or duplicate (409: already stored), by kind (events|findings)',
      labelNames: ['kind', 'result'],
      deprecatedNames: ['kaudit_indexer_documents_total'],
    }),
    documentsPerSecond: metrics.gauge({
      name: 'kaudit_indexer_documents_per_second',
      help: 'Documents acknowledged per second over the last sampling interval (5 s)',
    }),
    bulkDuration: metrics.histogram({
      name: 'kaudit_indexer_bulk_duration_seconds',
      help: 'Latency of one _bulk request, by outcome (ok|partial|error)',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    bulkDocuments: metrics.histogram({
      name: 'kaudit_indexer_bulk_documents',
      help: 'Documents per _bulk request',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
    }),
    retries: metrics.counter({
      name: 'kaudit_indexer_retries_total',
      help: 'Bulk retries: rate_limited (429), unavailable (503, unavailable shards, cluster block: retried without limit), server_error (other 5xx), unreachable (no answer / auth refused)',
      labelNames: ['reason'],
    }),
    deadLetters: metrics.counter({
      name: 'kaudit_indexer_dead_lettered_total',
      help: 'Messages sent to the dead-letter topic, by reason (invalid_message|rejected|retries_exhausted)',
      labelNames: ['reason'],
      deprecatedNames: ['kaudit_indexer_dead_letters_total'],
    }),
    /** Registered for the shared vocabulary; never counted: a document is retried or dead-lettered. */
    dropped: metrics.counter({
      name: 'kaudit_indexer_dropped_total',
      help: 'Messages dropped, by reason: always 0, the indexer retries or dead-letters, never drops',
      labelNames: ['reason'],
    }),
    errors: metrics.counter({
      name: 'kaudit_indexer_errors_total',
      help: 'Errors by stage (bulk|dead_letter|commit|consumer|lag) and type',
      labelNames: ['stage', 'type'],
    }),
    consumerLag: metrics.gauge({
      name: 'kaudit_indexer_consumer_lag',
      help: 'Messages between the committed offset and the high watermark, by topic and partition (refreshed every INDEXER_LAG_INTERVAL_MS and after each commit)',
      labelNames: ['topic', 'partition'],
    }),
    elasticsearchUp: metrics.gauge({
      name: 'kaudit_indexer_elasticsearch_up',
      help: '1 when the last request reached Elasticsearch and it could write, 0 while it is unreachable or cannot write (consumption paused)',
    }),
  };
}

export type IndexerMetrics = ReturnType<typeof createIndexerMetrics>;

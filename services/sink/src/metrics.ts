import { createMetrics } from '@kaudit/service-kit';

/** Every series the sink exports (README "Metrics" lists them); one instance per process. */
export function createSinkMetrics() {
  const metrics = createMetrics({ service: 'sink' });
  return {
    registry: metrics.registry,
    requests: metrics.counter({
      name: 'kaudit_sink_requests_total',
      help: 'HTTP requests to /audit by response status',
      labelNames: ['status'],
    }),
    received: metrics.counter({
      name: 'kaudit_sink_received_total',
      help: 'Items received in request bodies (valid or not)',
      deprecatedNames: ['kaudit_sink_events_received_total'],
    }),
    accepted: metrics.counter({
      name: 'kaudit_sink_events_accepted_total',
      help: 'Valid events acknowledged to the client (in Kafka or in the spool)',
    }),
    rejected: metrics.counter({
      name: 'kaudit_sink_dead_lettered_total',
      help: 'Invalid items sent to the dead-letter topic',
      deprecatedNames: ['kaudit_sink_events_rejected_total'],
    }),
    redacted: metrics.counter({
      name: 'kaudit_sink_events_redacted_total',
      help: 'Events from which the redaction policy removed something',
    }),
    truncated: metrics.counter({
      name: 'kaudit_sink_events_truncated_total',
      help: 'Events whose request/response bodies were dropped to fit the Kafka message size limit',
    }),
    batchSize: metrics.histogram({
      name: 'kaudit_sink_batch_size',
      help: 'Items per request',
      buckets: [1, 10, 50, 100, 200, 400, 1000, 5000],
    }),
    produceSeconds: metrics.histogram({
      name: 'kaudit_sink_produce_duration_seconds',
      help: 'Time until Kafka acknowledged a produce request (path=direct from a request, drain from the spool)',
      labelNames: ['path'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    deliveries: metrics.counter({
      name: 'kaudit_sink_deliveries_total',
      help: 'Requests acknowledged, by where their events went first (kafka or spool)',
      labelNames: ['to'],
    }),
    sent: metrics.counter({
      name: 'kaudit_sink_sent_total',
      help: 'Messages Kafka acknowledged, by topic',
      labelNames: ['topic'],
      deprecatedNames: ['kaudit_sink_messages_sent_total'],
    }),
    spoolBytes: metrics.gauge({
      name: 'kaudit_sink_spool_bytes',
      help: 'Bytes in the on-disk spool not yet acknowledged by Kafka',
    }),
    spoolCapacityBytes: metrics.gauge({
      name: 'kaudit_sink_spool_capacity_bytes',
      help: 'SINK_SPOOL_MAX_BYTES',
    }),
    kafkaConnected: metrics.gauge({
      name: 'kaudit_sink_kafka_connected',
      help: 'Whether the producer is connected to Kafka (1) or events go to the spool meanwhile (0); with SINK_WORKERS, the workers connected',
    }),
    usualBatchBytes: metrics.gauge({
      name: 'kaudit_sink_usual_batch_bytes',
      help: 'Spool bytes of a batch of the usual size: readiness and admission need room for one more',
      // SINK_WORKERS: the largest worker's, not the sum (the others are summed: the pool's totals).
      aggregator: 'max',
    }),
    spooledMessages: metrics.counter({
      name: 'kaudit_sink_spooled_messages_total',
      help: 'Messages written to the spool (Kafka unavailable, slow, or spool draining)',
    }),
    errors: metrics.counter({
      name: 'kaudit_sink_errors_total',
      help: 'Errors by stage (auth, admission, body, produce, spool, drain) and type',
      labelNames: ['stage', 'type'],
    }),
    dropped: metrics.counter({
      name: 'kaudit_sink_dropped_total',
      help: 'Messages given up on, by reason (only a Kafka rejection of one message, or a corrupt spool record)',
      labelNames: ['reason'],
    }),
  };
}

export type SinkMetrics = ReturnType<typeof createSinkMetrics>;

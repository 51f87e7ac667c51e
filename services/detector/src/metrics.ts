import { alsoCount, createMetrics } from '@kaudit/service-kit';

/** Every detector metric, in one place (README "Metrics" lists them). */
export function createDetectorMetrics() {
  const m = createMetrics({ service: 'detector' });
  // Deprecated: the detector drops nothing; what it counted here is what dead_lettered counts now.
  const dropped = m.counter({
    name: 'kaudit_detector_dropped_total',
    help: 'Deprecated: the same count as kaudit_detector_dead_lettered_total (the detector drops nothing)',
    labelNames: ['reason'] as const,
  });
  const sent = m.counter({
    name: 'kaudit_detector_sent_total',
    help: 'Findings produced to the alerts topic (all rules; findings_total has them by rule and severity)',
  });
  return {
    registry: m.registry,
    eventsReceived: m.counter({
      name: 'kaudit_detector_received_total',
      help: 'Messages read from the events topic (rate() of it is events/s)',
      deprecatedNames: ['kaudit_detector_events_received_total'],
    }),
    dropped,
    deadLettered: alsoCount(
      m.counter({
        name: 'kaudit_detector_dead_lettered_total',
        help: 'Messages sent to the dead-letter topic, by reason (invalid_envelope)',
        labelNames: ['reason'] as const,
      }),
      dropped,
    ),
    sent,
    findings: alsoCount(
      m.counter({
        name: 'kaudit_detector_findings_total',
        help: 'Findings produced to the alerts topic, by rule and severity',
        labelNames: ['rule', 'severity'] as const,
      }),
      sent,
      () => ({}),
    ),
    errors: m.counter({
      name: 'kaudit_detector_errors_total',
      help: 'Failures, by stage (restore, transaction, flush) and type; the batch is retried',
      labelNames: ['stage', 'type'] as const,
    }),
    consumerLag: m.gauge({
      name: 'kaudit_detector_consumer_lag',
      help: 'Messages behind the end of the events topic, by partition (as of the last batch)',
      labelNames: ['partition'] as const,
    }),
    stateKeys: m.gauge({
      name: 'kaudit_detector_state_keys',
      help: 'Identities and clusters held in memory (and in the changelog), by partition',
      labelNames: ['partition'] as const,
    }),
    stateBytes: m.gauge({
      name: 'kaudit_detector_state_bytes',
      help: 'Size of the serialised state held for the assigned partitions, by partition',
      labelNames: ['partition'] as const,
    }),
    pendingEvents: m.gauge({
      name: 'kaudit_detector_pending_events',
      help: 'Events waiting in the reordering buffer for the watermark, all partitions',
    }),
    batchSeconds: m.histogram({
      name: 'kaudit_detector_batch_seconds',
      help: 'Time to process a batch and commit its transaction (findings, state, offsets)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    }),
    restoreSeconds: m.histogram({
      name: 'kaudit_detector_restore_seconds',
      help: 'Time to restore the state of newly assigned partitions from the changelog',
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    }),
  };
}

export type DetectorMetrics = ReturnType<typeof createDetectorMetrics>;

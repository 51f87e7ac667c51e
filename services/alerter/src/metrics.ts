import { alsoCount, createMetrics } from '@kaudit/service-kit';

/** Every alerter metric, in one place (README "Metrics" lists them). */
export function createAlerterMetrics() {
  const m = createMetrics({ service: 'alerter' });
  const dropped = m.counter({
    name: 'kaudit_alerter_dropped_total',
    help: 'Findings or alerts not delivered on purpose, by reason (unrouted: no route matched; duplicate: the destination already has an outcome)',
    labelNames: ['reason'] as const,
  });
  const deadLettered = m.counter({
    name: 'kaudit_alerter_dead_lettered_total',
    help: 'Sent to the dead-letter topic, by destination and reason (invalid_finding has no destination)',
    labelNames: ['destination', 'reason'] as const,
  });
  return {
    registry: m.registry,
    findingsReceived: m.counter({
      name: 'kaudit_alerter_received_total',
      help: 'Messages read from the alerts topic',
      deprecatedNames: ['kaudit_alerter_findings_received_total'],
    }),
    findingsInvalid: alsoCount(
      m.counter({
        name: 'kaudit_alerter_findings_invalid_total',
        help: 'Messages that are not a valid finding (sent to the dead-letter topic)',
      }),
      deadLettered,
      () => ({ destination: '', reason: 'invalid_finding' }),
    ),
    findingsUnrouted: alsoCount(
      m.counter({
        name: 'kaudit_alerter_findings_unrouted_total',
        help: 'Valid findings no route matched (acknowledged without delivery; see routing.yaml)',
      }),
      dropped,
      () => ({ reason: 'unrouted' }),
    ),
    dropped,
    delivered: m.counter({
      name: 'kaudit_alerter_sent_total',
      help: 'Alerts a destination accepted, by destination and kind (finding, digest)',
      labelNames: ['destination', 'kind'] as const,
      deprecatedNames: ['kaudit_alerter_delivered_total'],
    }),
    retried: m.counter({
      name: 'kaudit_alerter_retried_total',
      help: 'Failed attempts that were retried, by destination and reason (HTTP status, timeout, network)',
      labelNames: ['destination', 'reason'] as const,
    }),
    deadLettered,
    deduplicated: alsoCount(
      m.counter({
        name: 'kaudit_alerter_deduplicated_total',
        help: 'Alerts not sent because the destination already has an outcome for that id',
        labelNames: ['destination'] as const,
      }),
      dropped,
      () => ({ reason: 'duplicate' }),
    ),
    throttled: m.counter({
      name: 'kaudit_alerter_throttled_total',
      help: 'Findings folded into a digest instead of being sent one by one, by route',
      labelNames: ['route'] as const,
    }),
    updates: m.counter({
      name: 'kaudit_alerter_finding_updates_total',
      help: 'Later revisions of findings already alerted: folded into a digest (throttled routes) or not sent again',
      labelNames: ['route', 'outcome'] as const,
    }),
    digests: m.counter({
      name: 'kaudit_alerter_digests_total',
      help: 'Digests built, by route',
      labelNames: ['route'] as const,
    }),
    deliveryDuration: m.histogram({
      name: 'kaudit_alerter_delivery_duration_seconds',
      help: 'From queueing an alert to its outcome (retries included), by destination and outcome',
      labelNames: ['destination', 'outcome'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    }),
    queueDepth: m.gauge({
      name: 'kaudit_alerter_queue_depth',
      help: 'Alerts waiting or in delivery, by destination',
      labelNames: ['destination'] as const,
    }),
    inFlight: m.gauge({
      name: 'kaudit_alerter_in_flight_messages',
      help: 'Messages read but not yet acknowledged (held back in digests included)',
    }),
    deliveredIds: m.gauge({
      name: 'kaudit_alerter_delivered_ids',
      help: 'Destination/alert ids remembered for dedup (bounded by ALERTER_DEDUP_MAX_ENTRIES)',
    }),
    errors: m.counter({
      name: 'kaudit_alerter_errors_total',
      help: 'Failures of the alerter itself, by stage (commit, record, dead-letter) and type',
      labelNames: ['stage', 'type'] as const,
    }),
  };
}

export type AlerterMetrics = ReturnType<typeof createAlerterMetrics>;

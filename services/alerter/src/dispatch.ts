import type { Logger } from '@kaudit/service-kit';
import { sleep } from '@kaudit/service-kit';
import type { Acks, SourceInfo } from './acks';
import { type Alert, alertBody } from './alert';
import type { DeliveredStore } from './delivered-store';
import type { DeliveryQueue } from './delivery-queue';
import type { AlerterMetrics } from './metrics';

export interface Dispatcher {
  /** Resolves true once the destination has an outcome for the alert that is safely on Kafka. */
  dispatch(destination: string, alert: Alert, source: SourceInfo): Promise<boolean>;
  /** Deliveries in progress. */
  inFlight(): number;
  /** Waits (at most timeoutMs) for the deliveries in progress to finish. */
  drain(timeoutMs: number): Promise<void>;
}

/**
 * Hands an alert to a destination's delivery queue at most once: a copy whose delivery is in progress
 * joins it, one with a recorded outcome (delivered-store.ts) is not sent again. The outcome (delivered,
 * or dead-lettered with the reason) is recorded on Kafka before the delivery counts as done.
 */
export function createDispatcher(deps: {
  queues: Map<string, DeliveryQueue>;
  store: DeliveredStore;
  acks: Pick<Acks, 'persist' | 'deadLetter'>;
  logger: Logger;
  metrics: AlerterMetrics;
  now: () => number;
}): Dispatcher {
  const { queues, store, acks, logger, metrics, now } = deps;
  /** (destination/alert id) -> its delivery in progress: a second copy of a finding joins the first. */
  const inflight = new Map<string, Promise<boolean>>();

  return {
    dispatch(destination, alert, source) {
      const key = `${destination}/${alert.id}`;
      const running = inflight.get(key);
      if (running) {
        metrics.deduplicated.inc({ destination });
        return running;
      }
      if (store.get(destination, alert.id) !== undefined) {
        metrics.deduplicated.inc({ destination });
        logger.debug({ destination, alertId: alert.id }, 'already has an outcome, not sent again');
        return Promise.resolve(true);
      }
      const queue = queues.get(destination)!;
      const startedAt = now();
      const delivery = queue
        .push(alert)
        .then(async (outcome) => {
          const seconds = (now() - startedAt) / 1000;
          if (outcome.status === 'aborted') return false;
          if (outcome.status === 'delivered') {
            metrics.delivered.inc({ destination, kind: alert.kind });
            metrics.deliveryDuration.observe({ destination, outcome: 'delivered' }, seconds);
            logger.info(
              { destination, alertId: alert.id, kind: alert.kind, attempts: outcome.attempts },
              'delivered',
            );
            return acks.persist('record', () => store.record(destination, alert.id, 'delivered'));
          }
          metrics.deadLettered.inc({ destination, reason: outcome.cause });
          metrics.deliveryDuration.observe({ destination, outcome: 'dead-lettered' }, seconds);
          logger.error(
            {
              destination,
              alertId: alert.id,
              kind: alert.kind,
              attempts: outcome.attempts,
              reason: outcome.reason,
            },
            'delivery dead-lettered',
          );
          const dead = await acks.deadLetter(outcome.reason, alertBody(alert), source, destination, key);
          return dead && acks.persist('record', () => store.record(destination, alert.id, 'dead-lettered'));
        })
        .finally(() => inflight.delete(key));
      inflight.set(key, delivery);
      return delivery;
    },

    inFlight: () => inflight.size,

    async drain(timeoutMs) {
      const deadline = now() + timeoutMs;
      while (inflight.size > 0 && now() < deadline) await sleep(50);
    },
  };
}

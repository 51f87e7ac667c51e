import type { DeadLetter } from '@kaudit/audit-schema';
import { isAppError, type Logger } from '@kaudit/service-kit';
import type { SinkMetrics } from './metrics';
import type { Sender } from './producer';
import type { Spool } from './spool';
import type { OutMessage } from './spool-format';

/**
 * Where a request's messages go: straight to Kafka when it is up and nothing older waits in the
 * spool; otherwise (Kafka down, slow past directTimeoutMs, or the spool still draining, which keeps
 * the order) to the spool. deliver() resolves only when one of the two has every message.
 * A single drainer sends the spool to Kafka oldest first.
 */
export interface Delivery {
  deliver(messages: readonly OutMessage[]): Promise<'kafka' | 'spool'>;
  start(): void;
  /** Stops the drainer after its current batch; the spool keeps the rest for the next start. */
  stop(): Promise<void>;
  /** Can take events now (not stopping, the spool not full). */
  ready(): boolean;
}

export interface DeliveryOptions {
  sender: Sender;
  spool: Spool;
  logger: Logger;
  metrics: SinkMetrics;
  dlqTopic: string;
  /** How long a request waits for Kafka before its messages go to the spool. */
  directTimeoutMs: number;
  drainBatchBytes?: number;
  /** Backoff between drain attempts while Kafka is unavailable. */
  drainRetryMs?: { initial: number; max: number };
}

export function createDelivery(options: DeliveryOptions): Delivery {
  const { sender, spool, metrics } = options;
  const logger = options.logger.child({ component: 'delivery' });
  const drainBatchBytes = options.drainBatchBytes ?? 1024 * 1024;
  const retryMs = options.drainRetryMs ?? { initial: 500, max: 30_000 };
  let stopping = false;
  let drainer: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  const stopSignal = new AbortController();

  const nudge = () => wake?.();
  const waitForWork = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping) return resolve();
      const done = () => {
        clearTimeout(timer);
        stopSignal.signal.removeEventListener('abort', done);
        wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
      stopSignal.signal.addEventListener('abort', done, { once: true });
    });

  async function drainLoop(): Promise<void> {
    let backoff = retryMs.initial;
    while (!stopping) {
      if (spool.isEmpty() || !sender.isConnected()) {
        await waitForWork(spool.isEmpty() ? 1000 : backoff);
        continue;
      }
      try {
        const batch = await spool.read(drainBatchBytes);
        if (!batch) {
          await waitForWork(200);
          continue;
        }
        try {
          if (batch.messages.length > 0) await sender.send(batch.messages, { path: 'drain' });
        } catch (err) {
          if (!(isAppError(err) && err.code === 'KAUDIT_ERR_KAFKA' && !err.retriable)) throw err;
          await sendOneByOne(batch.messages);
        }
        await spool.ack(batch);
        backoff = retryMs.initial;
      } catch (err) {
        metrics.errors.inc({ stage: 'drain', type: isAppError(err) ? err.code : 'Error' });
        logger.warn(
          { err, backoffMs: backoff, spoolBytes: spool.usedBytes() },
          'spool drain failed: retrying',
        );
        await waitForWork(backoff);
        backoff = Math.min(retryMs.max, backoff * 2);
      }
    }
  }

  /** Kafka refused a batch for its content: find the message(s) it refuses, dead-letter a note, go on. */
  async function sendOneByOne(messages: readonly OutMessage[]): Promise<void> {
    for (const message of messages) {
      try {
        await sender.send([message], { path: 'drain' });
      } catch (err) {
        if (!isAppError(err) || err.retriable) throw err;
        metrics.dropped.inc({ reason: 'kafka_rejected' });
        logger.error(
          { err, topic: message.topic, key: message.key, bytes: message.value.length },
          'Kafka rejected a message: dead-lettering a note instead',
        );
        const note: DeadLetter = {
          source: 'sink',
          reason: `Kafka rejected the message for ${message.topic}: ${err.message}`,
          at: new Date().toISOString(),
          topic: message.topic,
          raw: null,
        };
        await sender
          .send([{ topic: options.dlqTopic, key: message.key, value: JSON.stringify(note) }], {
            path: 'drain',
          })
          .catch((noteErr: unknown) =>
            logger.error({ err: noteErr }, 'could not dead-letter the note either'),
          );
      }
    }
  }

  return {
    async deliver(messages) {
      if (messages.length === 0) return 'kafka';
      if (spool.isEmpty() && sender.isConnected()) {
        try {
          await sender.send(messages, { path: 'direct', timeoutMs: options.directTimeoutMs });
          metrics.deliveries.inc({ to: 'kafka' });
          return 'kafka';
        } catch (err) {
          logger.warn({ err, messages: messages.length }, 'Kafka did not take the request: spooling it');
        }
      }
      await spool.append(messages);
      metrics.spooledMessages.inc(messages.length);
      metrics.deliveries.inc({ to: 'spool' });
      nudge();
      return 'spool';
    },
    start() {
      drainer ??= drainLoop();
    },
    async stop() {
      stopping = true;
      stopSignal.abort();
      await drainer;
    },
    ready: () => !stopping && spool.usedBytes() < spool.maxBytes,
  };
}

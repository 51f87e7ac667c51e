import { backoffDelayMs, withTimeout } from '@kaudit/common';
import { AppError, buildDeadLetter, isAppError, type Logger, serializeDeadLetter } from '@kaudit/service-kit';
import type { SinkMetrics } from './metrics';
import type { Sender } from './producer';
import { type Spool, spoolFullError } from './spool';
import { type OutMessage, recordBytes } from './spool-format';
import { createUsualBatch } from './usual-batch';

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
  /**
   * Before a request's body is read: room for a batch of the usual size, or the 503 to refuse it with
   * (spoolFullError). Requests that will go to the spool (it is not empty, or Kafka is not connected)
   * hold the usual size until release(), so a burst is not admitted whole into room for one batch.
   */
  admit(): Admission;
  /** Can take the next batch of the usual size: not stopping, its last spool write did not fail, and admit() would. */
  ready(): boolean;
  /** The usual batch size in spool bytes (usual-batch.ts). */
  usualBatchBytes(): number;
}

export type Admission =
  | {
      ok: true;
      /** The request is done (answered or aborted): its share of the spool goes back. Idempotent. */
      release(): void;
    }
  | { ok: false; error: AppError };

/** What delivery needs of the spool (a fake in unit tests). */
export type DeliverySpool = Pick<
  Spool,
  'append' | 'read' | 'ack' | 'isEmpty' | 'usedBytes' | 'hasRoomFor' | 'maxBytes'
>;

export interface DeliveryOptions {
  sender: Sender;
  spool: DeliverySpool;
  logger: Logger;
  metrics: SinkMetrics;
  dlqTopic: string;
  /** How long a request waits for Kafka before its messages go to the spool. */
  directTimeoutMs: number;
  drainBatchBytes?: number;
  /** Backoff between drain attempts while Kafka is unavailable. */
  drainRetryMs?: { initial: number; max: number };
  /** The smallest usual batch size (default 1 MiB of spool bytes). */
  usualBatchFloorBytes?: number;
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
  /**
   * Why the last write to the spool failed (a failed fsync, a disk error, a spool left unusable by a
   * write it could not cut off), until a write succeeds again. While set the sink is not ready: with
   * Kafka slow or down it could not keep its guarantee, and another replica can. A full spool is not
   * a fault (it empties as it drains).
   */
  let spoolFault: unknown;
  const usual = createUsualBatch({
    floorBytes: options.usualBatchFloorBytes ?? 1024 * 1024,
    capBytes: spool.maxBytes,
  });
  metrics.usualBatchBytes.set(usual.bytes());
  /** Spool bytes held by admitted requests that will go to the spool. */
  let admittedBytes = 0;
  const toSpool = () => !(spool.isEmpty() && sender.isConnected());
  const fits = () => !toSpool() || spool.hasRoomFor(admittedBytes + usual.bytes());

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

  const isSpoolFull = (err: unknown) =>
    isAppError(err) && err.message === spoolFullError(spool.maxBytes).message;

  async function appendToSpool(messages: readonly OutMessage[]): Promise<void> {
    try {
      await spool.append(messages);
    } catch (err) {
      if (!isSpoolFull(err) && !stopping) {
        if (spoolFault === undefined)
          logger.error({ err }, 'spool write failed: not ready until a write to the spool succeeds');
        spoolFault = err;
      }
      throw err;
    }
    if (spoolFault !== undefined) logger.info('spool writes again: ready');
    spoolFault = undefined;
  }

  async function drainLoop(): Promise<void> {
    // Doubling without jitter: one sink, one spool, nobody to fall into lockstep with.
    const delay = (attempt: number) =>
      backoffDelayMs(attempt, { initialDelayMs: retryMs.initial, maxDelayMs: retryMs.max, jitter: 'none' });
    let failures = 0;
    let probeFailures = 0;
    while (!stopping) {
      if (spoolFault !== undefined) {
        // Not ready keeps requests (and their writes) away: only a write of our own can tell that the
        // spool works again. An empty record, which the drainer acknowledges like any other.
        const healed = await appendToSpool([]).then(
          () => true,
          () => false,
        );
        if (!healed) {
          await waitForWork(delay(probeFailures++));
          continue;
        }
        probeFailures = 0;
      }
      if (spool.isEmpty() || !sender.isConnected()) {
        await waitForWork(spool.isEmpty() ? 1000 : delay(failures));
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
        failures = 0;
      } catch (err) {
        metrics.errors.inc({ stage: 'drain', type: isAppError(err) ? err.code : 'Error' });
        logger.warn(
          { err, backoffMs: delay(failures), spoolBytes: spool.usedBytes() },
          'spool drain failed: retrying',
        );
        await waitForWork(delay(failures++));
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
        const note = buildDeadLetter({
          source: 'sink',
          reason: `Kafka rejected the message for ${message.topic}: ${err.message}`,
          topic: message.topic,
          raw: null,
        });
        await sender
          .send([{ topic: options.dlqTopic, key: message.key, value: serializeDeadLetter(note) }], {
            path: 'drain',
          })
          .catch((noteErr: unknown) =>
            logger.error({ err: noteErr }, 'could not dead-letter the note either'),
          );
      }
    }
  }

  return {
    admit() {
      if (!toSpool()) return { ok: true, release: () => undefined };
      if (!fits()) return { ok: false, error: spoolFullError(spool.maxBytes) };
      const bytes = usual.bytes();
      admittedBytes += bytes;
      let held = true;
      return {
        ok: true,
        release() {
          if (held) admittedBytes -= bytes;
          held = false;
        },
      };
    },
    usualBatchBytes: () => usual.bytes(),
    async deliver(messages) {
      if (messages.length === 0) return 'kafka';
      usual.observe(recordBytes(messages));
      metrics.usualBatchBytes.set(usual.bytes());
      if (spool.isEmpty() && sender.isConnected()) {
        try {
          await sender.send(messages, { path: 'direct', timeoutMs: options.directTimeoutMs });
          metrics.deliveries.inc({ to: 'kafka' });
          return 'kafka';
        } catch (err) {
          logger.warn({ err, messages: messages.length }, 'Kafka did not take the request: spooling it');
        }
      }
      await appendToSpool(messages);
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
    ready: () => !stopping && spoolFault === undefined && fits(),
  };
}

/** deliver() within the request's budget: past it, a 503 (Retry-After 5 s) the client retries. */
export async function deliverInTime(
  delivery: Pick<Delivery, 'deliver'>,
  messages: readonly OutMessage[],
  timeoutMs: number,
): Promise<void> {
  await withTimeout(delivery.deliver(messages), timeoutMs, () => {
    throw new AppError('KAUDIT_ERR_REQUEST_TIMEOUT', 'events could not be stored in time; retry', {
      statusCode: 503,
      retryAfterMs: 5000,
    });
  });
}

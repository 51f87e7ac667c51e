import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError, createLogger } from '@kaudit/service-kit';
import { waitFor } from '@kaudit/testkit';
import { createDelivery, type DeliverySpool } from './delivery';
import { createSinkMetrics } from './metrics';
import type { Sender } from './producer';
import { openSpool, spoolFullError } from './spool';
import { type OutMessage, recordBytes } from './spool-format';

const message: OutMessage = { topic: 'events', key: 'prod/alice', value: '{}' };
const writeFailed = new AppError('KAUDIT_ERR_SPOOL', 'spool write failed', { statusCode: 503 });

/** A spool in memory whose writes fail while `failure` is set; Kafka is down, so nothing drains. */
function setup() {
  const state = { failure: undefined as unknown, appends: 0, records: [] as OutMessage[][] };
  const spool: DeliverySpool = {
    maxBytes: 1000,
    append: async (messages) => {
      state.appends += 1;
      if (state.failure !== undefined) throw state.failure;
      state.records.push([...messages]);
    },
    read: async () => undefined,
    ack: async () => undefined,
    isEmpty: () => state.records.length === 0,
    usedBytes: () => state.records.length * 10,
    hasRoomFor: (bytes) => state.records.length * 10 + bytes <= 1000,
  };
  const sender: Sender = {
    start: () => undefined,
    isConnected: () => false,
    send: async () => undefined,
    stop: async () => undefined,
  };
  const delivery = createDelivery({
    sender,
    spool,
    logger: createLogger({ service: 'sink-test', level: 'silent' }),
    metrics: createSinkMetrics(),
    dlqTopic: 'dlq',
    directTimeoutMs: 100,
    drainRetryMs: { initial: 5, max: 20 },
    usualBatchFloorBytes: 100,
  });
  return { delivery, state };
}

describe('sink > delivery > readiness', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  it('is not ready while the spool cannot write, and ready again once a write succeeds', async () => {
    const { delivery, state } = setup();
    stop = () => delivery.stop();
    expect(delivery.ready()).toBe(true);
    state.failure = writeFailed;
    await expect(delivery.deliver([message])).rejects.toBe(writeFailed);
    expect(delivery.ready()).toBe(false);

    // Not ready keeps requests away: the drainer's own probe write has to find out it works again.
    delivery.start();
    const before = state.appends;
    await waitFor('probe writes', async () => (state.appends >= before + 2 ? true : undefined));
    expect(delivery.ready()).toBe(false);
    state.failure = undefined;
    await waitFor('ready again', async () => (delivery.ready() ? true : undefined));
    expect(state.records).toContainEqual([]);
  });

  it('stays not ready while the spool is unusable', async () => {
    const { delivery, state } = setup();
    stop = () => delivery.stop();
    state.failure = new AppError('KAUDIT_ERR_SPOOL', 'spool is unusable after a failed write', {
      statusCode: 503,
    });
    await expect(delivery.deliver([message])).rejects.toThrow(/unusable/);
    delivery.start();
    const before = state.appends;
    await waitFor('probe writes', async () => (state.appends >= before + 3 ? true : undefined));
    expect(delivery.ready()).toBe(false);
  });

  it('counts a full spool as full, not as a fault: ready again as soon as there is room', async () => {
    const { delivery, state } = setup();
    stop = () => delivery.stop();
    state.failure = spoolFullError(1000);
    await expect(delivery.deliver([message])).rejects.toThrow(/spool is full/);
    expect(delivery.ready()).toBe(true);
    state.failure = undefined;
    await delivery.deliver([message]);
    expect(state.records).toEqual([[message]]);
  });
});

describe('sink > delivery > readiness tells the truth (real spool, Kafka down)', () => {
  const logger = createLogger({ service: 'sink-test', level: 'silent' });
  const down: Sender = {
    start: () => undefined,
    isConnected: () => false,
    send: async () => undefined,
    stop: async () => undefined,
  };
  /** One message whose spool record takes exactly `bytes`. */
  const ofRecordBytes = (bytes: number): OutMessage[] => {
    const overhead = recordBytes([{ topic: 'events', key: null, value: '' }]);
    return [{ topic: 'events', key: null, value: 'x'.repeat(bytes - overhead) }];
  };
  const open = async (usualBatchFloorBytes: number) => {
    const spool = await openSpool({
      dir: mkdtempSync(join(tmpdir(), 'sink-ready-')),
      maxBytes: 64 * 1024,
      logger,
    });
    const delivery = createDelivery({
      sender: down,
      spool,
      logger,
      metrics: createSinkMetrics(),
      dlqTopic: 'dlq',
      directTimeoutMs: 100,
      usualBatchFloorBytes,
    });
    return { spool, delivery };
  };

  it('is 503 exactly when the next batch of the usual size would be refused', async () => {
    const { spool, delivery } = await open(0);
    // The usual size is the largest recent batch: one of 9000 bytes among batches of 1000.
    await delivery.deliver(ofRecordBytes(9000));
    expect(delivery.usualBatchBytes()).toBe(9000);
    const steps: Array<{ ready: boolean; stored: boolean }> = [];
    for (;;) {
      const ready = delivery.ready();
      const admission = delivery.admit();
      expect(admission.ok).toBe(ready);
      if (admission.ok) admission.release();
      const stored = await delivery.deliver(ofRecordBytes(9000)).then(
        () => true,
        () => false,
      );
      steps.push({ ready, stored });
      if (!stored) break;
      await delivery.deliver(ofRecordBytes(1000));
    }
    expect(steps.every((s) => s.ready === s.stored)).toBe(true);
    expect(steps.length).toBeGreaterThan(3);
    // Not full: a small batch still fits, yet readiness already says a usual one would not.
    expect(spool.hasRoomFor(1000)).toBe(true);
    expect(delivery.ready()).toBe(false);
    await spool.close();
  });

  it('keeps room for at least the floor, and admitted requests hold their share until released', async () => {
    const { spool, delivery } = await open(16 * 1024);
    await delivery.deliver(ofRecordBytes(1000));
    expect(delivery.usualBatchBytes()).toBe(16 * 1024);
    const held = [];
    for (let admission = delivery.admit(); admission.ok; admission = delivery.admit()) held.push(admission);
    // 64 KiB minus 1000 bytes in use: three shares of 16 KiB, the fourth would not fit.
    expect(held).toHaveLength(3);
    expect(delivery.ready()).toBe(false);
    for (const admission of held) if (admission.ok) admission.release();
    expect(delivery.ready()).toBe(true);
    await spool.close();
  });
});

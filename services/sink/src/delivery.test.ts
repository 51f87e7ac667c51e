import { AppError, createLogger } from '@kaudit/service-kit';
import { waitFor } from '@kaudit/testkit';
import { createDelivery, type DeliverySpool } from './delivery';
import { createSinkMetrics } from './metrics';
import type { Sender } from './producer';
import { spoolFullError } from './spool';
import type { OutMessage } from './spool-format';

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

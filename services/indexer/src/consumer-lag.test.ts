import { createLogger, partitionLags } from '@kaudit/service-kit';
import { createLagSampler } from './consumer-lag';
import { createIndexerMetrics } from './metrics';

describe('indexer > consumer lag', () => {
  it.each([
    [
      'committed behind the end',
      [{ partition: 0, high: '120', low: '0' }],
      [{ partition: 0, offset: '100' }],
      20,
    ],
    ['caught up', [{ partition: 0, high: '120', low: '0' }], [{ partition: 0, offset: '120' }], 0],
    [
      'nothing committed: from the low watermark',
      [{ partition: 0, high: '120', low: '20' }],
      [{ partition: 0, offset: '-1' }],
      100,
    ],
    ['no commit entry at all', [{ partition: 0, high: '7', low: '0' }], [], 7],
    [
      'commit older than retention kept',
      [{ partition: 0, high: '500', low: '400' }],
      [{ partition: 0, offset: '10' }],
      100,
    ],
    ['empty partition', [{ partition: 0, high: '0', low: '0' }], [{ partition: 0, offset: '-1' }], 0],
  ])('%s', (_name, ends, commits, lag) => {
    expect(partitionLags(ends, commits)).toEqual([{ partition: 0, lag }]);
  });

  it('answers per partition, in partition order', () => {
    expect(
      partitionLags(
        [
          { partition: 1, high: '10', low: '0' },
          { partition: 0, high: '5', low: '0' },
        ],
        [{ partition: 1, offset: '4' }],
      ),
    ).toEqual([
      { partition: 0, lag: 5 },
      { partition: 1, lag: 6 },
    ]);
  });

  it('refreshes the gauge from the broker without any commit, and keeps the last value when Kafka is away', async () => {
    let high = '40';
    let fail = false;
    const admin = {
      connect: jest.fn(async () => {}),
      disconnect: jest.fn(async () => {}),
      fetchOffsets: jest.fn(async () => {
        if (fail) throw new Error('broker down');
        return [
          { topic: 'events', partitions: [{ partition: 0, offset: '10', metadata: null }] },
          { topic: 'alerts', partitions: [{ partition: 0, offset: '-1', metadata: null }] },
        ];
      }),
      fetchTopicOffsets: jest.fn(async (topic: string) =>
        topic === 'events'
          ? [{ partition: 0, offset: high, high, low: '0' }]
          : [{ partition: 0, offset: '3', high: '3', low: '0' }],
      ),
    };
    const metrics = createIndexerMetrics();
    const sampler = createLagSampler({
      admin,
      groupId: 'g',
      topics: ['events', 'alerts'],
      metrics,
      logger: createLogger({ service: 'indexer-test', level: 'silent' }),
      intervalMs: 10_000,
    });
    const gauge = async () =>
      Object.fromEntries(
        (await metrics.consumerLag.get()).values.map((v) => [
          `${v.labels.topic}/${v.labels.partition}`,
          v.value,
        ]),
      );

    await sampler.sample();
    expect(await gauge()).toEqual({ 'events/0': 30, 'alerts/0': 3 });
    high = '90';
    await sampler.sample();
    expect(await gauge()).toEqual({ 'events/0': 80, 'alerts/0': 3 });
    fail = true;
    await sampler.sample();
    expect(await gauge()).toEqual({ 'events/0': 80, 'alerts/0': 3 });
    const errors = await metrics.errors.get();
    expect(errors.values.map((v) => v.labels.stage)).toEqual(['lag']);
    expect(admin.connect).toHaveBeenCalledTimes(1);
    await sampler.stop();
    expect(admin.disconnect).toHaveBeenCalledTimes(1);
  });

  it('samples on start and then every interval', async () => {
    jest.useFakeTimers();
    try {
      const admin = {
        connect: async () => {},
        disconnect: async () => {},
        fetchOffsets: jest.fn(async () => []),
        fetchTopicOffsets: async () => [{ partition: 0, offset: '1', high: '1', low: '0' }],
      };
      const sampler = createLagSampler({
        admin,
        groupId: 'g',
        topics: ['events'],
        metrics: createIndexerMetrics(),
        logger: createLogger({ service: 'indexer-test', level: 'silent' }),
        intervalMs: 10_000,
      });
      sampler.start();
      await jest.advanceTimersByTimeAsync(0);
      expect(admin.fetchOffsets).toHaveBeenCalledTimes(1);
      await jest.advanceTimersByTimeAsync(25_000);
      expect(admin.fetchOffsets).toHaveBeenCalledTimes(3);
      await sampler.stop();
      await jest.advanceTimersByTimeAsync(30_000);
      expect(admin.fetchOffsets).toHaveBeenCalledTimes(3);
    } finally {
      jest.useRealTimers();
    }
  });
});

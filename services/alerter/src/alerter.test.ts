import { createLogger } from '@kaudit/service-kit';
import { type Deferred, deferred } from '@kaudit/testkit';
import type { EachMessagePayload, Kafka } from 'kafkajs';
import { type AlerterOptions, createAlerter } from './alerter';
import type { Destination } from './destinations';
import { buildFinding } from './finding-fixture';
import { createAlerterMetrics } from './metrics';
import { parseRoutingPolicy } from './routing';

// The order of shutdown steps, against a stand-in for kafkajs whose consumers stop only when the test
// says so (a real consumer's stop waits for its fetch in progress). Delivery against real Kafka is
// covered by alerter.int.test.ts.

interface FakeConsumer {
  groupId: string;
  calls: string[];
  stopped: Deferred<void>;
  eachMessage?: (payload: EachMessagePayload) => Promise<void>;
  commits: Array<Array<{ topic: string; partition: number; offset: string }>>;
}

function fakeKafka() {
  const consumers: FakeConsumer[] = [];
  const sent: Array<{ topic: string }> = [];
  const kafka = {
    admin: () => ({
      connect: async () => {},
      disconnect: async () => {},
      listTopics: async () => ['alerts', 'dlq', 'delivered'],
      fetchTopicOffsets: async () => [],
    }),
    producer: () => ({
      connect: async () => {},
      disconnect: async () => {},
      send: async (record: { topic: string }) => {
        sent.push(record);
        return [];
      },
    }),
    consumer: ({ groupId }: { groupId: string }) => {
      const fake: FakeConsumer = { groupId, calls: [], stopped: deferred(), commits: [] };
      consumers.push(fake);
      const stop = () => {
        fake.calls.push('stop');
        return fake.stopped.promise;
      };
      return {
        events: { GROUP_JOIN: 'group-join', CRASH: 'crash' },
        on: () => () => {},
        connect: async () => {},
        subscribe: async () => {},
        run: async ({ eachMessage }: { eachMessage: FakeConsumer['eachMessage'] }) => {
          fake.eachMessage = eachMessage;
        },
        stop,
        // kafkajs disconnect stops the consumer first.
        disconnect: async () => {
          await stop();
          fake.calls.push('disconnect');
        },
        commitOffsets: async (offsets: FakeConsumer['commits'][number]) => {
          fake.commits.push(offsets);
        },
      };
    },
  } as unknown as Kafka;
  const find = (what: string, match: (groupId: string) => boolean) => {
    const found = consumers.find((c) => match(c.groupId));
    if (!found) throw new Error(`no ${what} consumer`);
    return found;
  };
  return {
    kafka,
    sent,
    main: () => find('findings', (g) => g === 'alerter-test'),
    // The store reads with a throwaway group under `${groupId}.delivered.`.
    store: () => find('delivered-ids', (g) => g.startsWith('alerter-test.delivered.')),
  };
}

const options: AlerterOptions = {
  alertsTopic: 'alerts',
  dlqTopic: 'dlq',
  deliveredTopic: 'delivered',
  groupId: 'alerter-test',
  fromBeginning: true,
  maxInFlight: 100,
  commitIntervalMs: 60_000,
  throttleFlushIntervalMs: 60_000,
  throttleGraceMs: 0,
  dedupMaxEntries: 1000,
  dedupRetentionMs: 60_000,
  dedupLoadTimeoutMs: 5000,
};

function setup() {
  const fake = fakeKafka();
  const sends: Array<Deferred<void>> = [];
  const destination: Destination = {
    name: 'hook',
    type: 'slack',
    timeoutMs: 60_000,
    concurrency: 1,
    retry: { retries: 0, maxElapsedMs: 60_000, initialDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1 },
    secrets: [],
    send: () => {
      const send = deferred();
      sends.push(send);
      return send.promise;
    },
  };
  const routing = parseRoutingPolicy(
    'destinations:\n  hook: { type: slack, urlFrom: { env: UNUSED } }\nroutes:\n  - name: all\n    destinations: [hook]\n',
  );
  const alerter = createAlerter({
    kafka: fake.kafka,
    logger: createLogger({ service: 'alerter-test', level: 'silent' }),
    metrics: createAlerterMetrics(),
    routing,
    destinations: [destination],
    options,
  });
  return { ...fake, alerter, sends };
}

/** Lets every settled promise run its callbacks. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('alerter > stop', () => {
  it('stops the delivered-ids consumer while the findings consumer is still stopping, not after it', async () => {
    const { alerter, main, store } = setup();
    await alerter.start();
    const stopping = alerter.stop({ drainTimeoutMs: 10_000 });
    await flush();

    expect(main().calls).toEqual(['stop']);
    expect(store().calls).toEqual(['stop']);

    main().stopped.resolve();
    store().stopped.resolve();
    await stopping;
    expect(main().calls.at(-1)).toBe('disconnect');
    expect(store().calls.at(-1)).toBe('disconnect');
  });

  it('still lets a delivery in progress finish, records it and commits its offset', async () => {
    const { alerter, main, store, sends, sent } = setup();
    await alerter.start();
    const finding = buildFinding();
    await main().eachMessage!({
      topic: 'alerts',
      partition: 0,
      message: { offset: '41', key: null, value: Buffer.from(JSON.stringify(finding)) },
      heartbeat: async () => {},
    } as unknown as EachMessagePayload);
    await flush();
    expect(sends).toHaveLength(1);

    let stopped = false;
    const stopping = alerter.stop({ drainTimeoutMs: 10_000 }).then(() => {
      stopped = true;
    });
    main().stopped.resolve();
    store().stopped.resolve();
    // Several polls of the drain loop: a stop that did not wait for the delivery would be done by now.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stopped).toBe(false);

    sends[0]!.resolve();
    await stopping;
    expect(sent.map((r) => r.topic)).toEqual(['delivered']);
    expect(main().commits).toEqual([[{ topic: 'alerts', partition: 0, offset: '42' }]]);
  });
});

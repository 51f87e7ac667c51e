import { createLogger } from '@kaudit/service-kit';
import { type Deferred, deferred, waitFor } from '@kaudit/testkit';
import type { EachMessagePayload, Kafka } from 'kafkajs';
import { buildFinding } from '../test/finding-fixture';
import { type AlerterOptions, createAlerter } from './alerter';
import { DeliveryError, type Destination } from './destinations';
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

/** `failSend(topic)`: the producer's send to that topic rejects while it returns true. */
function fakeKafka(failSend: (topic: string) => boolean = () => false) {
  const handlers = new Map<string, (event: unknown) => void>();
  const consumers: FakeConsumer[] = [];
  const sent: Array<{ topic: string; messages: Array<{ key: string | null; value: string | null }> }> = [];
  const kafka = {
    admin: () => ({
      connect: async () => {},
      disconnect: async () => {},
      listTopics: async () => ['alerts', 'dlq', 'delivered'],
      fetchTopicMetadata: async ({ topics }: { topics: string[] }) => ({
        topics: topics.map((name) => ({ name, partitions: [{ partitionId: 0, leader: 1 }] })),
      }),
      fetchTopicOffsets: async () => [],
    }),
    producer: () => ({
      connect: async () => {},
      disconnect: async () => {},
      send: async (record: (typeof sent)[number]) => {
        if (failSend(record.topic)) throw new Error('KafkaJSConnectionError: broker down');
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
        on: (event: string, handler: (event: unknown) => void) => {
          if (groupId === 'alerter-test') handlers.set(event, handler);
          return () => {};
        },
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
    /** What kafkajs emits once the findings consumer has its partitions. */
    joinGroup: () => handlers.get('group-join')!({ payload: { memberAssignment: { alerts: [0] } } }),
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
  maxHeld: 100,
  maxQueued: 100,
  commitIntervalMs: 60_000,
  throttleFlushIntervalMs: 60_000,
  throttleGraceMs: 0,
  dedupMaxEntries: 1000,
  dedupRetentionMs: 60_000,
  dedupLoadTimeoutMs: 5000,
};

function setup(failSend?: (topic: string) => boolean) {
  const fake = fakeKafka(failSend);
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
    writeRetry: { retries: 2, initialDelayMs: 1, maxDelayMs: 5 },
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

/** One message of the alerts topic, handed to the alerter the way kafkajs would. */
function message(offset: number, value: unknown): EachMessagePayload {
  return {
    topic: 'alerts',
    partition: 0,
    message: { offset: String(offset), key: null, value: Buffer.from(JSON.stringify(value)) },
    heartbeat: async () => {},
  } as unknown as EachMessagePayload;
}

describe('alerter > one destination down', () => {
  it('a down destination with a full queue does not stop reading, nor delivery to a healthy one', async () => {
    const fake = fakeKafka();
    const healthy: string[] = [];
    const hanging: Array<Deferred<void>> = [];
    const destination = (name: string, send: Destination['send']): Destination => ({
      name,
      type: 'webhook',
      timeoutMs: 60_000,
      concurrency: 1,
      retry: { retries: 0, maxElapsedMs: 60_000, initialDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1 },
      secrets: [],
      send,
    });
    const routing = parseRoutingPolicy(
      [
        'destinations:',
        '  down: { type: slack, urlFrom: { env: UNUSED } }',
        '  healthy: { type: slack, urlFrom: { env: UNUSED } }',
        'routes:',
        '  - { name: all, destinations: [down, healthy] }',
        '  - { name: healthy-only, match: { minSeverity: critical }, destinations: [healthy] }',
      ].join('\n'),
    );
    const alerter = createAlerter({
      kafka: fake.kafka,
      logger: createLogger({ service: 'alerter-test', level: 'silent' }),
      metrics: createAlerterMetrics(),
      routing,
      destinations: [
        {
          ...destination('down', async () => {
            hanging.push(deferred());
            throw new DeliveryError('down: HTTP 503', '503', { statusCode: 503, retriable: true });
          }),
          // Retried for a long time: the first delivery stays in progress for the whole test.
          retry: {
            retries: 100,
            maxElapsedMs: 7_200_000,
            initialDelayMs: 600_000,
            maxDelayMs: 600_000,
            maxRetryAfterMs: 1,
          },
        },
        destination('healthy', async (alert) => {
          healthy.push(alert.id);
        }),
      ],
      // The old global limit (3 unacknowledged messages) would have stopped reading at the 4th, and
      // a healthy destination's full queue is waited for: the burst must not dead-letter its deliveries.
      options: { ...options, maxHeld: 3, maxQueued: 3 },
      random: () => 1, // the full backoff: no second attempt within the test
    });
    await alerter.start();
    const findings = Array.from({ length: 10 }, (_, i) =>
      buildFinding({ severity: i % 2 === 0 ? 'critical' : 'high' }),
    );
    for (const [i, finding] of findings.entries()) await fake.main().eachMessage!(message(i, finding));
    await flush();

    expect(healthy.sort()).toEqual(findings.map((f) => f.id).sort());
    expect(hanging).toHaveLength(1); // one in progress (waiting to retry), two waiting: the queue is full
    const dead = fake.sent
      .filter((r) => r.topic === 'dlq')
      .flatMap((r) => r.messages.map((m) => JSON.parse(m.value!) as { target: string; reason: string }));
    expect(dead).toHaveLength(7);
    expect(dead.every((d) => d.target === 'down' && d.reason.startsWith('backlog full: 3 deliveries'))).toBe(
      true,
    );
    const stopping = alerter.stop({ drainTimeoutMs: 0 });
    fake.main().stopped.resolve();
    fake.store().stopped.resolve();
    await stopping;
    // The first message still waits on the down destination: nothing could be committed.
    expect(fake.main().commits).toEqual([]);
  });
});

describe('alerter > outcome writes', () => {
  it('retries an outcome write Kafka refuses, not ready meanwhile, and commits once it is written', async () => {
    let kafkaDown = false;
    const { alerter, main, store, sends, joinGroup } = setup((topic) => kafkaDown && topic === 'delivered');
    await alerter.start();
    joinGroup();
    expect(alerter.ready()).toBe(true);

    await main().eachMessage!(message(41, buildFinding()));
    await flush();
    kafkaDown = true;
    sends[0]!.resolve(); // delivered; now its outcome record cannot be written
    await waitFor('readiness to fail', async () => (alerter.ready() ? undefined : true));
    expect(alerter.stats().deliveries).toBe(1); // still being written, not given up

    kafkaDown = false;
    await waitFor('ready again', async () => (alerter.ready() ? true : undefined));
    const stopping = alerter.stop({ drainTimeoutMs: 10_000 });
    main().stopped.resolve();
    store().stopped.resolve();
    await stopping;
    expect(main().commits).toEqual([[{ topic: 'alerts', partition: 0, offset: '42' }]]);
  });
});

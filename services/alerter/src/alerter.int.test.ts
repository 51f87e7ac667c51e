import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DeadLetter, DeadLetterSchema, type Finding } from '@kaudit/audit-schema';
import { consumerLag, createKafka, createLogger } from '@kaudit/service-kit';
import { type Deferred, deferred, stackEnv, uniqueName, waitFor } from '@kaudit/testkit';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import { buildFinding } from '../test/finding-fixture';
import { type Alerter, type AlerterOptions, createAlerter } from './alerter';
import { createDestinations } from './destinations';
import { createAlerterMetrics } from './metrics';
import { parseRoutingPolicy } from './routing';
import { verifySignature } from './webhook-signature';

// Real Kafka of the test stack; local HTTP servers stand in for Slack, the SIEM webhook and Splunk HEC
// and record every request they get and what they answered.

// Kafka group joins and retries take seconds; the per-project testTimeout does not reach hooks here.
jest.setTimeout(60_000);

const logger = createLogger({ service: 'alerter-test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const kafka: Kafka = createKafka({ clientId: 'alerter-int-test', brokers: stackEnv().kafkaBrokers, logger });

interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Status the receiver answered with (undefined while it holds the request). */
  status?: number;
}

type Answer = { status: number; headers?: Record<string, string>; body?: string };

interface Receiver {
  url: string;
  requests: Received[];
  /** Requests answered 2xx. */
  accepted(): Received[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 at a random port; `answer` decides each response (may wait). */
async function startReceiver(
  answer: (req: Received, index: number) => Answer | Promise<Answer>,
): Promise<Receiver> {
  const requests: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: Received = {
        at: Date.now(),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(received);
      void Promise.resolve(answer(received, requests.length - 1)).then((a) => {
        // A request the client abandoned (timeout, shutdown) was not answered: it is not accepted.
        if (res.destroyed) return;
        received.status = a.status;
        res.writeHead(a.status, a.headers ?? {}).end(a.body ?? 'ok');
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    accepted: () => requests.filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const ok: Answer = { status: 200, body: 'ok' };

/** What a receiver got, as finding ids (webhook and HEC bodies carry the finding; Slack has it in text). */
function idsIn(requests: Received[], ids: string[]): string[] {
  return requests.flatMap((r) =>
    ids.filter((id) => r.body.includes(`"${id}"`) || r.body.includes(`\`${id}\``)),
  );
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

interface Harness {
  topics: { alerts: string; dlq: string; delivered: string };
  groupId: string;
  options: AlerterOptions;
  start(routingYaml: string, env: Record<string, string>): Promise<Alerter>;
  produce(findings: Array<Finding | string>): Promise<void>;
  deadLetters(): DeadLetter[];
  lag(): Promise<number>;
  cleanup(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const topics = {
    alerts: uniqueName('alerts'),
    dlq: uniqueName('dlq'),
    delivered: uniqueName('alerter-delivered'),
  };
  const groupId = uniqueName('alerter');
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.alerts, numPartitions: 2 },
      { topic: topics.dlq, numPartitions: 1 },
    ],
  });
  await admin.disconnect();
  const producer: Producer = kafka.producer();
  await producer.connect();
  const dead: DeadLetter[] = [];
  const dlqConsumer: Consumer = kafka.consumer({ groupId: uniqueName('dlq-reader') });
  await dlqConsumer.connect();
  await dlqConsumer.subscribe({ topic: topics.dlq, fromBeginning: true });
  await dlqConsumer.run({
    eachMessage: async ({ message }) => {
      dead.push(DeadLetterSchema.parse(JSON.parse(message.value!.toString('utf8'))));
    },
  });
  const running: Alerter[] = [];
  const options: AlerterOptions = {
    alertsTopic: topics.alerts,
    dlqTopic: topics.dlq,
    deliveredTopic: topics.delivered,
    groupId,
    fromBeginning: true,
    maxHeld: 1000,
    maxQueued: 1000,
    commitIntervalMs: 100,
    throttleFlushIntervalMs: 200,
    throttleGraceMs: 0,
    dedupMaxEntries: 10_000,
    dedupRetentionMs: 86_400_000,
    dedupLoadTimeoutMs: 30_000,
  };
  return {
    topics,
    groupId,
    options,
    async start(routingYaml, env) {
      const routing = parseRoutingPolicy(routingYaml, 'test-routing.yaml');
      const { destinations, problems } = createDestinations(routing, { env }, {});
      expect(problems).toEqual([]);
      const alerter = createAlerter({
        kafka,
        logger,
        metrics: createAlerterMetrics(),
        routing,
        destinations,
        options,
      });
      running.push(alerter);
      await alerter.start();
      await waitFor('the alerter to join its group', async () => (alerter.ready() ? true : undefined));
      return alerter;
    },
    async produce(findings) {
      await producer.send({
        topic: topics.alerts,
        messages: findings.map((f) =>
          typeof f === 'string'
            ? { key: 'junk', value: f }
            : { key: `${f.cluster}/${f.identity.username}`, value: JSON.stringify(f) },
        ),
      });
    },
    deadLetters: () => dead,
    lag: () => consumerLag(kafka, groupId, topics.alerts),
    async cleanup() {
      for (const alerter of running) await alerter.stop({ drainTimeoutMs: 0 });
      await dlqConsumer.disconnect();
      await producer.disconnect();
    },
  };
}

const fastRetry = 'retry: { retries: 3, initialDelay: 20ms, maxDelay: 100ms }';

describe('alerter > delivery (integration)', () => {
  let h: Harness;
  const receivers: Receiver[] = [];
  const receiver = async (answer: Parameters<typeof startReceiver>[0]) => {
    const r = await startReceiver(answer);
    receivers.push(r);
    return r;
  };

  beforeEach(async () => {
    h = await harness();
  });

  afterEach(async () => {
    await h.cleanup();
    for (const r of receivers.splice(0)) await r.close();
  });

  test('routes findings to Slack, the signed webhook and Splunk HEC; each gets its findings once', async () => {
    const slack = await receiver(() => ok);
    const siem = await receiver(() => ok);
    const hec = await receiver(() => ({ status: 200, body: '{"text":"Success","code":0}' }));
    await h.start(
      `
timezone: Europe/Berlin
defaults: { ${fastRetry} }
destinations:
  slack: { type: slack, urlFrom: { env: SLACK_URL } }
  siem: { type: webhook, url: '${siem.url}', hmacKeyFrom: { env: HMAC_KEY } }
  hec: { type: splunk-hec, url: '${hec.url}', tokenFrom: { env: HEC_TOKEN }, index: sec }
routes:
  - { name: evidence, destinations: [siem, hec] }
  - { name: page, match: { minSeverity: high, clusters: ['prod-*'] }, destinations: [slack] }
`,
      { SLACK_URL: slack.url, HMAC_KEY: 'the-hmac-key', HEC_TOKEN: 'the-hec-token' },
    );
    const paged = buildFinding({ severity: 'critical', cluster: 'prod-eu-1' });
    const quiet = buildFinding({ severity: 'low', cluster: 'prod-eu-1' });
    const staging = buildFinding({ severity: 'critical', cluster: 'staging' });
    const ids = [paged.id, quiet.id, staging.id];
    // The same finding twice (the detector re-sent it): still delivered once per destination.
    await h.produce([paged, quiet, staging, paged]);

    await waitFor('SIEM and HEC to have all three', async () =>
      siem.accepted().length >= 3 && hec.accepted().length >= 3 ? true : undefined,
    );
    await waitFor('every message acknowledged and committed', async () =>
      (await h.lag()) === 0 ? true : undefined,
    );

    expect(countBy(idsIn(slack.accepted(), ids))).toEqual({ [paged.id]: 1 });
    expect(countBy(idsIn(siem.accepted(), ids))).toEqual({ [paged.id]: 1, [quiet.id]: 1, [staging.id]: 1 });
    expect(countBy(idsIn(hec.accepted(), ids))).toEqual({ [paged.id]: 1, [quiet.id]: 1, [staging.id]: 1 });

    const slackBody = JSON.parse(slack.accepted()[0]!.body) as { attachments: Array<{ color: string }> };
    expect(slackBody.attachments[0]!.color).toBe('#D72B3F');

    for (const request of siem.accepted()) {
      const header = request.headers['x-kaudit-signature'] as string;
      expect(verifySignature('the-hmac-key', request.body, header)).toMatchObject({ ok: true });
      expect(verifySignature('another-key', request.body, header)).toEqual({
        ok: false,
        reason: 'signature does not match',
      });
      expect(request.headers['x-kaudit-event']).toBe('finding');
      expect(request.headers['x-kaudit-delivery']).toBe(`siem/${(JSON.parse(request.body) as Finding).id}`);
    }
    for (const request of hec.accepted()) {
      expect(request.headers.authorization).toBe('Splunk the-hec-token');
      expect(JSON.parse(request.body)).toMatchObject({
        index: 'sec',
        sourcetype: 'kaudit:finding',
        host: expect.any(String),
      });
    }
    expect(h.deadLetters()).toEqual([]);
  });

  test('a destination that answers 500 then 200 gets each alert exactly once', async () => {
    const seen = new Set<string>();
    const flaky = await receiver((req) => {
      const id = (JSON.parse(req.body) as Finding).id;
      if (seen.has(id)) return ok;
      seen.add(id);
      return { status: 500, body: 'internal error' };
    });
    await h.start(
      `
destinations:
  flaky: { type: webhook, url: '${flaky.url}', hmacKeyFrom: { env: K }, ${fastRetry} }
routes:
  - { name: all, destinations: [flaky] }
`,
      { K: 'k' },
    );
    const findings = [buildFinding(), buildFinding(), buildFinding()];
    const ids = findings.map((f) => f.id);
    await h.produce(findings);
    await waitFor('all committed', async () => ((await h.lag()) === 0 ? true : undefined));
    expect(countBy(idsIn(flaky.requests, ids))).toEqual(Object.fromEntries(ids.map((id) => [id, 2])));
    expect(countBy(idsIn(flaky.accepted(), ids))).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    expect(h.deadLetters()).toEqual([]);
  });

  test('a Slack 429 with Retry-After is retried no sooner than it asked', async () => {
    let first = true;
    const slack = await receiver(() => {
      if (!first) return ok;
      first = false;
      return { status: 429, headers: { 'Retry-After': '1' }, body: 'rate_limited' };
    });
    await h.start(
      `
destinations:
  slack:
    type: slack
    urlFrom: { env: SLACK_URL }
    # The backoff alone would retry within 20 ms: only Retry-After can explain a longer gap.
    retry: { retries: 3, initialDelay: 10ms, maxDelay: 20ms }
routes:
  - { name: all, destinations: [slack] }
`,
      { SLACK_URL: slack.url },
    );
    await h.produce([buildFinding()]);
    await waitFor('the retry to be accepted', async () => (slack.accepted().length === 1 ? true : undefined));
    expect(slack.requests.map((r) => r.status)).toEqual([429, 200]);
    expect(slack.requests[1]!.at - slack.requests[0]!.at).toBeGreaterThanOrEqual(1000);
  });

  test('a destination down for its whole retry budget dead-letters without holding up the others', async () => {
    const gate: Deferred<void> = deferred();
    const fast = await receiver(() => ok);
    const down = await receiver(async () => {
      await gate.promise;
      return { status: 503, body: 'unavailable' };
    });
    await h.start(
      `
destinations:
  fast: { type: webhook, url: '${fast.url}', hmacKeyFrom: { env: K }, ${fastRetry} }
  down:
    type: slack
    urlFrom: { env: DOWN_URL }
    timeout: 60s
    concurrency: 2
    ${fastRetry}
routes:
  - { name: all, destinations: [fast, down] }
`,
      { K: 'k', DOWN_URL: `${down.url}?token=SECRET-IN-URL` },
    );
    const findings = Array.from({ length: 5 }, () => buildFinding());
    const ids = findings.map((f) => f.id);
    await h.produce(findings);

    await waitFor('the fast destination to have all five', async () =>
      fast.accepted().length === 5 ? true : undefined,
    );
    // The down destination is still holding its first attempts: nothing is acknowledged yet...
    expect(down.requests.length).toBeLessThanOrEqual(2);
    expect(h.deadLetters()).toEqual([]);
    expect(await h.lag()).toBe(5);

    gate.resolve();
    await waitFor('five dead letters', async () => (h.deadLetters().length === 5 ? true : undefined));
    await waitFor('all committed', async () => ((await h.lag()) === 0 ? true : undefined));
    for (const dead of h.deadLetters()) {
      expect(dead).toMatchObject({ source: 'alerter', target: 'down', topic: h.topics.alerts });
      expect(dead.reason).toBe('gave up after 4 attempts: down: HTTP 503: unavailable');
      expect(ids).toContain((dead.raw as Finding).id);
      expect(JSON.stringify(dead)).not.toContain('SECRET-IN-URL');
    }
    expect(countBy(idsIn(fast.accepted(), ids))).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
  });

  test('a restart mid-delivery repeats nothing already delivered', async () => {
    const fast = await receiver(() => ok);
    let holding = true;
    const held: Array<() => void> = [];
    const slow = await receiver(
      () =>
        new Promise<Answer>((resolve) => {
          if (!holding) return resolve(ok);
          held.push(() => resolve(ok));
        }),
    );
    const routing = `
destinations:
  fast: { type: webhook, url: '${fast.url}', hmacKeyFrom: { env: K }, ${fastRetry} }
  slow: { type: webhook, url: '${slow.url}', hmacKeyFrom: { env: K }, timeout: 60s, concurrency: 4, ${fastRetry} }
routes:
  - { name: all, destinations: [fast, slow] }
`;
    const first = await h.start(routing, { K: 'k' });
    const findings = Array.from({ length: 8 }, () => buildFinding());
    const ids = findings.map((f) => f.id);
    await h.produce(findings);
    await waitFor('fast to have all eight', async () => (fast.accepted().length === 8 ? true : undefined));
    await waitFor('slow to hold four', async () => (slow.requests.length === 4 ? true : undefined));
    // Let two of the slow deliveries through before the restart: they must not be repeated either.
    held.shift()!();
    held.shift()!();
    await waitFor('two slow deliveries done', async () => (slow.accepted().length === 2 ? true : undefined));
    await waitFor('their outcome recorded', async () => (first.stats().deliveries === 6 ? true : undefined));

    // Abrupt stop: the in-flight deliveries are abandoned, nothing more is drained.
    await first.stop({ drainTimeoutMs: 0 });
    const confirmed = slow.accepted().map((r) => (JSON.parse(r.body) as Finding).id);
    expect(confirmed).toHaveLength(2);
    const requestsBefore = slow.requests.length;
    holding = false;
    for (const release of held.splice(0)) release(); // the abandoned requests, answered too late

    await h.start(routing, { K: 'k' });
    await waitFor('all committed after the restart', async () => ((await h.lag()) === 0 ? true : undefined));

    expect(countBy(idsIn(fast.requests, ids))).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    const slowAfterRestart = slow.requests
      .slice(requestsBefore)
      .map((r) => (JSON.parse(r.body) as Finding).id);
    // Everything not confirmed before the restart is delivered after it, once; nothing confirmed is repeated.
    expect(slowAfterRestart.filter((id) => confirmed.includes(id))).toEqual([]);
    expect(countBy(slowAfterRestart)).toEqual(
      Object.fromEntries(ids.filter((id) => !confirmed.includes(id)).map((id) => [id, 1])),
    );
    expect(h.deadLetters()).toEqual([]);
  });

  /** Slack throttled to 2 per identity and 10 minutes, a SIEM webhook getting everything. */
  async function startThrottledToSlack() {
    const slack = await receiver(() => ok);
    const siem = await receiver(() => ok);
    await h.start(
      `
destinations:
  slack: { type: slack, urlFrom: { env: SLACK_URL } }
  siem: { type: webhook, url: '${siem.url}', hmacKeyFrom: { env: K } }
routes:
  - { name: slack-throttled, destinations: [slack], throttle: { maxAlerts: 2, window: 10m } }
  - { name: siem-everything, destinations: [siem] }
`,
      { SLACK_URL: slack.url, K: 'k' },
    );
    return { slack, siem };
  }

  test('per route, N alerts per identity per window, the rest as one "and N more like this" digest', async () => {
    const { slack, siem } = await startThrottledToSlack();
    // One identity, one past 10-minute window: 2 alerts, then 7 folded. Another identity is untouched.
    const burst = Array.from({ length: 9 }, (_, i) =>
      buildFinding({ firstSeen: `2026-01-06T10:0${i}:00.000Z`, lastSeen: `2026-01-06T10:0${i}:00.000Z` }),
    );
    const bob = buildFinding({
      identity: { username: 'bob@example.com', kind: 'user', groups: [] },
      firstSeen: '2026-01-06T10:05:00.000Z',
      lastSeen: '2026-01-06T10:05:00.000Z',
    });
    // Windows close by the findings' own time: a later finding shows the 10:00-10:10 window is over.
    const carol = buildFinding({
      identity: { username: 'carol@example.com', kind: 'user', groups: [] },
      firstSeen: '2026-01-06T10:12:00.000Z',
      lastSeen: '2026-01-06T10:12:00.000Z',
    });
    await h.produce([...burst, bob, carol]);
    await waitFor('all committed', async () => ((await h.lag()) === 0 ? true : undefined));

    const bodies = slack.accepted().map((r) => JSON.parse(r.body) as { text: string });
    const digests = bodies.filter((b) => b.text.startsWith('and '));
    const singles = bodies.filter((b) => !b.text.startsWith('and '));
    expect(singles).toHaveLength(4); // two of alice's, bob's, carol's
    const folded = digests.map((d) =>
      Number(/^and (\d+) more like this for alice@example.com/.exec(d.text)?.[1]),
    );
    expect(folded.reduce((a, b) => a + b, 0)).toBe(7);
    // The SIEM route has no throttle: it got every finding.
    expect(siem.accepted()).toHaveLength(11);
  });

  test('later revisions of a finding are never a second alert: folded into the digest on a throttled route', async () => {
    const { slack, siem } = await startThrottledToSlack();
    const revision = (n: number) =>
      buildFinding({
        id: 'enumeration-alice',
        revision: n,
        count: n * 10,
        firstSeen: '2026-01-06T10:00:00.000Z',
        lastSeen: `2026-01-06T10:0${n}:00.000Z`,
      });
    // A later finding shows the 10:00-10:10 window is over (windows close by event time).
    const carol = buildFinding({
      identity: { username: 'carol@example.com', kind: 'user', groups: [] },
      firstSeen: '2026-01-06T10:12:00.000Z',
      lastSeen: '2026-01-06T10:12:00.000Z',
    });
    // Two more of alice's findings in the window: the second is held (limit 2), so a digest goes out.
    const more = ['a', 'b'].map((suffix, i) =>
      buildFinding({ id: `off-hours-${suffix}`, firstSeen: `2026-01-06T10:0${i + 4}:00.000Z` }),
    );
    await h.produce([revision(1), revision(2), ...more, revision(3), carol]);
    await waitFor('all committed', async () => ((await h.lag()) === 0 ? true : undefined));

    const bodies = slack.accepted().map((r) => JSON.parse(r.body) as { text: string });
    // revision 1, off-hours-a, carol's, and one digest (off-hours-b held, alice's updates folded in).
    expect(bodies).toHaveLength(4);
    const digests = slack.accepted().filter((r) => r.body.includes('and 1 more like this'));
    expect(digests).toHaveLength(1);
    expect(digests[0]!.body).toContain('1 finding alerted before got more evidence since');
    expect(digests[0]!.body).toContain('now 30 requests');
    const siemIds = siem.accepted().map((r) => (JSON.parse(r.body) as Finding).id);
    expect(siemIds.filter((id) => id === 'enumeration-alice')).toEqual(['enumeration-alice']);
    const sent = JSON.parse(
      siem.accepted().find((r) => r.body.includes('enumeration-alice'))!.body,
    ) as Finding;
    expect(sent.revision).toBe(1);
  });

  test('a dead letter is re-driven by a tombstone for its outcome and the finding produced again', async () => {
    let rejecting = true;
    const siem = await receiver(() => (rejecting ? { status: 400, body: 'bad' } : ok));
    const alerter = await h.start(
      `
destinations:
  siem: { type: webhook, url: '${siem.url}', hmacKeyFrom: { env: K } }
routes:
  - { name: all, destinations: [siem] }
`,
      { K: 'k' },
    );
    const finding = buildFinding();
    await h.produce([finding]);
    await waitFor('the dead letter', async () => (h.deadLetters().length === 1 ? true : undefined));
    await waitFor('its outcome remembered', async () =>
      alerter.stats().deliveredIds === 1 ? true : undefined,
    );
    rejecting = false;

    // The operator's re-drive (README "Dead letters"): forget the outcome, produce `raw` again.
    const dead = h.deadLetters()[0]!;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: h.topics.delivered,
      messages: [{ key: `${dead.target}/${(dead.raw as Finding).id}`, value: null }],
    });
    await producer.disconnect();
    await waitFor('the tombstone read', async () => (alerter.stats().deliveredIds === 0 ? true : undefined));
    await h.produce([dead.raw as Finding]);

    await waitFor('all committed', async () => ((await h.lag()) === 0 ? true : undefined));
    expect(countBy(idsIn(siem.accepted(), [finding.id]))).toEqual({ [finding.id]: 1 });
    expect(h.deadLetters()).toHaveLength(1);
  });

  test('a message that is not a finding goes to the dead-letter topic and the partition moves on', async () => {
    const siem = await receiver(() => ok);
    await h.start(
      `
destinations:
  siem: { type: webhook, url: '${siem.url}', hmacKeyFrom: { env: K } }
routes:
  - { name: all, destinations: [siem] }
`,
      { K: 'k' },
    );
    const good = buildFinding();
    await h.produce(['{"id": "x"}', 'not json', good]);
    await waitFor('all committed', async () => ((await h.lag()) === 0 ? true : undefined));
    // Committed means the dead letters are on Kafka; the test's own reader may still be catching up.
    await waitFor('two dead letters read', async () => (h.deadLetters().length >= 2 ? true : undefined));
    expect(h.deadLetters()).toHaveLength(2);
    expect(h.deadLetters().map((d) => d.reason.split(':')[0])).toEqual(
      expect.arrayContaining(['not a valid finding', 'value is not JSON']),
    );
    expect(idsIn(siem.accepted(), [good.id])).toEqual([good.id]);
  });
});

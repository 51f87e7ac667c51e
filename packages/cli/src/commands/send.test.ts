import {
  API_SERVER_RETRY,
  type BatchReply,
  backoffDelayMs,
  DeliveryFailedError,
  formatSummary,
  parseRetryAfterMs,
  SendError,
  sendItems,
  targetUrl,
  type WebhookClient,
} from './send';

/** A receiver scripted per call: a reply, or an error to throw. */
function fakeClient(script: Array<Partial<BatchReply> | SendError> = []) {
  const batches: string[][] = [];
  const client: WebhookClient = {
    post: async (items) => {
      batches.push([...items]);
      const next = script.shift();
      if (next instanceof SendError) throw next;
      return { status: 200, accepted: items.length, rejected: 0, body: {}, ...next };
    },
    close: () => {},
  };
  return { client, batches };
}

const events = (n: number) => Array.from({ length: n }, (_, i) => ({ auditID: `a-${i}` }));
const base = { url: 'https://127.0.0.1:1/audit' };

describe('cli > send > batching', () => {
  it.each([
    [1000, 400, [400, 400, 200]],
    [400, 400, [400]],
    [401, 400, [400, 1]],
    [5, 2, [2, 2, 1]],
    [0, 400, []],
  ])('%i events in batches of %i -> %j', async (count, batchSize, sizes) => {
    const { client, batches } = fakeClient();
    const summary = await sendItems(events(count), { ...base, client, batchSize });
    expect(batches.map((b) => b.length)).toEqual(sizes);
    expect(summary).toEqual({ batches: sizes.length, sent: count, accepted: count, rejected: 0, retries: 0 });
  });

  it('keeps the order of the input and sends each item as its JSON', async () => {
    const { client, batches } = fakeClient();
    await sendItems(events(3), { ...base, client, batchSize: 2 });
    expect(batches.flat().map((text) => JSON.parse(text))).toEqual(events(3));
  });

  it('starts a new batch before it would pass the byte limit', async () => {
    const { client, batches } = fakeClient();
    const big = { pad: 'x'.repeat(600) };
    await sendItems([big, big, big], { ...base, client, maxBatchBytes: 1300 });
    expect(batches.map((b) => b.length)).toEqual([2, 1]);
  });

  it('refuses batch sizes the API server would not send', async () => {
    await expect(sendItems(events(1), { ...base, batchSize: 401 })).rejects.toThrow(
      'batch size must be 1-400',
    );
  });

  it("adds up the receiver's accepted and rejected counts", async () => {
    const { client } = fakeClient([
      { accepted: 1, rejected: 1 },
      { accepted: 2, rejected: 0 },
    ]);
    const summary = await sendItems(events(4), { ...base, client, batchSize: 2 });
    expect(summary).toMatchObject({ sent: 4, accepted: 3, rejected: 1 });
  });
});

describe('cli > send > retries', () => {
  const retriable = (status: number, retryAfterMs?: number) =>
    new SendError(`answered ${status}`, true, status, retryAfterMs);

  it('retries a failed batch with the backoff, honouring Retry-After, then goes on', async () => {
    const { client, batches } = fakeClient([retriable(503, 1000), retriable(500), {}, {}]);
    const delays: number[] = [];
    const summary = await sendItems(events(3), {
      ...base,
      client,
      batchSize: 2,
      retry: { jitter: 0 },
      sleep: async (ms) => {
        delays.push(ms);
      },
    });
    expect(delays).toEqual([1000, API_SERVER_RETRY.initialDelayMs * API_SERVER_RETRY.factor]);
    expect(batches.map((b) => b.length)).toEqual([2, 2, 2, 1]);
    expect(summary).toEqual({ batches: 2, sent: 3, accepted: 3, rejected: 0, retries: 2 });
  });

  it('gives up after the budget with the last answer, and sends nothing after the failed batch', async () => {
    const { client, batches } = fakeClient([retriable(500), retriable(500), retriable(502)]);
    const failure = sendItems(events(4), {
      ...base,
      client,
      batchSize: 2,
      retry: { attempts: 3 },
      sleep: async () => {},
    });
    await expect(failure).rejects.toThrow(DeliveryFailedError);
    await expect(failure).rejects.toThrow(
      /2 events was not delivered \(gave up after 3 attempts\): answered 502/,
    );
    expect(batches).toHaveLength(3);
  });

  it('does not retry an answer a retry cannot change', async () => {
    const { client, batches } = fakeClient([new SendError('answered 401', false, 401)]);
    const failure = sendItems(events(1), { ...base, client, sleep: async () => {} });
    await expect(failure).rejects.toThrow('a retry cannot change this answer');
    expect(batches).toHaveLength(1);
  });

  it('does not wait for a Retry-After longer than the limit', async () => {
    const { client } = fakeClient([retriable(429, 3_600_000)]);
    const failure = sendItems(events(1), { ...base, client, sleep: async () => {} });
    await expect(failure).rejects.toThrow('Retry-After 3600 s exceeds the 600 s limit');
  });

  it('keeps the summary of what was delivered before the failure', async () => {
    const { client } = fakeClient([{}, new SendError('answered 400', false, 400)]);
    const error = await sendItems(events(3), { ...base, client, batchSize: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeliveryFailedError);
    expect((error as DeliveryFailedError).summary).toMatchObject({ batches: 1, sent: 2, accepted: 2 });
  });
});

describe('cli > send > helpers', () => {
  it('backs off like the API server: 10 s, x1.5, with up to 20 % jitter', () => {
    expect(
      [1, 2, 3, 4].map((attempt) => backoffDelayMs(API_SERVER_RETRY, attempt, undefined, () => 0)),
    ).toEqual([10_000, 15_000, 22_500, 33_750]);
    expect(backoffDelayMs(API_SERVER_RETRY, 1, undefined, () => 1)).toBe(12_000);
    expect(backoffDelayMs(API_SERVER_RETRY, 3, 2000)).toBe(2000);
  });

  it.each([
    ['3', 3000],
    [['7'], 7000],
    ['Thu, 01 Jan 1970 00:00:05 GMT', 5000],
    ['soon', undefined],
    [undefined, undefined],
  ] as const)('Retry-After %j -> %j ms', (header, expected) => {
    expect(parseRetryAfterMs(header as string | string[] | undefined, 0)).toBe(expected);
  });

  it.each([
    ['https://sink:8443/audit', undefined, 'https://sink:8443/audit'],
    ['https://sink:8443/audit', 'prod-eu', 'https://sink:8443/audit/prod-eu'],
    ['https://sink:8443/audit/', 'a b', 'https://sink:8443/audit/a%20b'],
  ])('%s with --cluster %s posts to %s', (to, cluster, expected) => {
    expect(targetUrl(to, cluster)).toBe(expected);
  });

  it('summarises what the receiver said', () => {
    expect(
      formatSummary({ batches: 3, sent: 1000, accepted: 998, rejected: 2, retries: 1, unreadable: 1 }),
    ).toBe('sent 1000 events in 3 batches, accepted 998, rejected 2, unreadable 1, retried 1 times');
  });
});

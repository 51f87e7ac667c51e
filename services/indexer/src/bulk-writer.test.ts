import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Client, errors } from '@elastic/elasticsearch';
import { createLogger } from '@kaudit/service-kit';
import { createBulkWriter, describe as describeError } from './bulk-writer';
import { bulkLines } from './decode-message';
import { createIndexerMetrics } from './metrics';

const fixture = (name: string) => JSON.parse(readFileSync(join(__dirname, '../test/fixtures', name), 'utf8'));

function item(id: string) {
  return {
    kind: 'events' as const,
    index: 'logs-kaudit.audit-default',
    id,
    cluster: 'c',
    ...bulkLines('logs-kaudit.audit-default', id, { id }),
  };
}

/** A client whose _bulk answers are scripted; records the ids of every request. */
function scriptedClient(answers: Array<(ids: string[]) => unknown>) {
  const requests: string[][] = [];
  const client = {
    transport: {
      request: async ({ bulkBody }: { bulkBody: string }) => {
        const ids = bulkBody
          .split('\n')
          .filter((line) => line.startsWith('{"create"'))
          .map((line) => JSON.parse(line).create._id as string);
        requests.push(ids);
        const answer = answers.shift();
        if (!answer) throw new Error('no more scripted answers');
        const result = answer(ids);
        if (result instanceof Error) throw result;
        return result;
      },
    },
  } as unknown as Client;
  return { client, requests };
}

const ok = (status: number) => (ids: string[]) => ({
  errors: status !== 201,
  items: ids.map((id) => ({ create: { _id: id, status } })),
});

function setup(answers: Array<(ids: string[]) => unknown>, maxItemRetries = 3) {
  const { client, requests } = scriptedClient(answers);
  const metrics = createIndexerMetrics();
  const writer = createBulkWriter({
    client,
    logger: createLogger({ service: 'indexer-test', level: 'silent' }),
    metrics,
    maxItemRetries,
    maxDelayMs: 1000,
    random: () => 0.5,
  });
  const waits: number[] = [];
  const events: string[] = [];
  const hooks = {
    wait: async (ms: number) => {
      waits.push(ms);
    },
    onUnreachable: () => events.push('unreachable'),
    onReachable: () => events.push('reachable'),
  };
  return { writer, requests, waits, events, hooks, metrics };
}

describe('indexer > bulk writer', () => {
  it('settles the recorded reply: 409 is success, mapping errors are rejected with their reason', async () => {
    const reply = fixture('bulk-reply-409-400-400.json');
    const { writer, hooks, requests } = setup([() => reply]);
    const results = await writer.write([item('a'), item('a'), item('b'), item('c')], hooks);
    expect(requests).toHaveLength(1);
    expect(results.map((r) => r.result)).toEqual(['duplicate', 'duplicate', 'rejected', 'rejected']);
    expect(results[2]).toMatchObject({ status: 400, retriesExhausted: false });
    expect(results[2]!.result === 'rejected' && results[2]!.reason).toMatch(
      /^document_parsing_exception: .*kubernetes\.audit\.responseStatus\.code.*\(x_content_parse_exception: .*out of range/s,
    );
    expect(results[3]!.result === 'rejected' && results[3]!.reason).toMatch(
      /strict_dynamic_mapping_exception/,
    );
  });

  it('re-sends only the 429 and 5xx items, with growing jittered delays', async () => {
    const [rateLimited] = fixture('bulk-reply-429-503.json').items;
    const { writer, hooks, requests, waits, metrics, events } = setup([
      () => ({
        errors: true,
        items: [
          { create: { _id: 'a', status: 201 } },
          rateLimited,
          { create: { _id: 'y', status: 500, error: { type: 'exception', reason: 'boom' } } },
          { create: { _id: 'd', status: 409 } },
        ],
      }),
      (ids) => ({
        errors: true,
        items: [{ create: { _id: ids[0], status: 201 } }, { create: { _id: ids[1], status: 500 } }],
      }),
      ok(201),
    ]);
    const results = await writer.write([item('a'), item('x'), item('y'), item('d')], hooks);
    expect(requests).toEqual([['a', 'x', 'y', 'd'], ['x', 'y'], ['y']]);
    expect(results.map((r) => r.result)).toEqual(['created', 'created', 'created', 'duplicate']);
    expect(waits).toEqual([50, 100]);
    expect(events).toEqual([]);
    const retries = await metrics.retries.get();
    expect(Object.fromEntries(retries.values.map((v) => [v.labels.reason, v.value]))).toEqual({
      rate_limited: 1,
      server_error: 2,
    });
  });

  it('never dead-letters items Elasticsearch cannot write now (restart, read-only): retried past maxItemRetries, paused like an outage', async () => {
    const [, unavailableShards] = fixture('bulk-reply-429-503.json').items;
    const readOnly = {
      create: {
        _id: 'b',
        status: 403,
        error: {
          type: 'cluster_block_exception',
          reason:
            'index [.ds-logs-kaudit.audit-default-2026.01.05-000001] blocked by: [FORBIDDEN/8/index write (api)];',
        },
      },
    };
    const mappingError = {
      create: { _id: 'c', status: 400, error: { type: 'document_parsing_exception', reason: 'bad field' } },
    };
    const notYet = (ids: string[]) => ({
      errors: true,
      items: ids.map((id) =>
        id === 'a'
          ? unavailableShards
          : id === 'b'
            ? readOnly
            : id === 'c'
              ? mappingError
              : { create: { status: 503 } },
      ),
    });
    const { writer, hooks, requests, events, metrics } = setup(
      [notYet, notYet, notYet, notYet, notYet, ok(201)],
      1,
    );
    const results = await writer.write([item('a'), item('b'), item('c'), item('d')], hooks);
    expect(results).toEqual([
      { result: 'created' },
      { result: 'created' },
      {
        result: 'rejected',
        status: 400,
        reason: 'document_parsing_exception: bad field',
        retriesExhausted: false,
      },
      { result: 'created' },
    ]);
    expect(requests).toEqual([['a', 'b', 'c', 'd'], ...new Array(5).fill(['a', 'b', 'd'])]);
    expect(events).toEqual(['unreachable', 'reachable']);
    const retries = await metrics.retries.get();
    expect(retries.values.map((v) => [v.labels.reason, v.value])).toEqual([['unavailable', 15]]);
    expect((await metrics.elasticsearchUp.get()).values[0]!.value).toBe(1);
  });

  it('splits a request Elasticsearch refuses as too large (413); only a document too large alone is rejected', async () => {
    const tooLarge = () =>
      new errors.ResponseError({
        body: '<html>413 Request Entity Too Large</html>',
        statusCode: 413,
        headers: {},
        warnings: null,
        meta: {} as never,
      });
    const answer = (ids: string[]) => (ids.length > 2 || ids.includes('c') ? tooLarge() : ok(201)(ids));
    const { writer, hooks, requests, events } = setup(new Array(5).fill(answer));
    const results = await writer.write([item('a'), item('b'), item('c'), item('d')], hooks);
    expect(requests).toEqual([['a', 'b', 'c', 'd'], ['a', 'b'], ['c', 'd'], ['c'], ['d']]);
    expect(results.map((r) => r.result)).toEqual(['created', 'created', 'rejected', 'created']);
    expect(results[2]).toMatchObject({ status: 413, retriesExhausted: false });
    expect(results[2]!.result === 'rejected' && results[2]!.reason).toMatch(/^the document alone is larger/);
    expect(events).toEqual([]);
  });

  it('gives up on an item that keeps failing with 5xx after maxItemRetries', async () => {
    const { writer, hooks, requests } = setup([ok(500), ok(500), ok(500)], 2);
    const [result] = await writer.write([item('a')], hooks);
    expect(requests).toHaveLength(3);
    expect(result).toMatchObject({ result: 'rejected', status: 500, retriesExhausted: true });
  });

  it('keeps retrying a 429 item: back-pressure is never a reason to drop', async () => {
    const { writer, hooks, requests } = setup([ok(429), ok(429), ok(429), ok(429), ok(201)], 0);
    const [result] = await writer.write([item('a')], hooks);
    expect(requests).toHaveLength(5);
    expect(result).toEqual({ result: 'created' });
  });

  it('when Elasticsearch is unreachable, says so once, retries the same documents, and says when it is back', async () => {
    const down = () => new errors.ConnectionError('connect ECONNREFUSED 127.0.0.1:9200');
    const { writer, hooks, requests, events, waits } = setup([down, down, down, ok(201)]);
    const results = await writer.write([item('a'), item('b')], hooks);
    expect(results).toEqual([{ result: 'created' }, { result: 'created' }]);
    expect(requests).toEqual([
      ['a', 'b'],
      ['a', 'b'],
      ['a', 'b'],
      ['a', 'b'],
    ]);
    expect(events).toEqual(['unreachable', 'reachable']);
    expect(waits).toEqual([50, 100, 200]);
  });

  it('treats refused credentials like an outage (retried), but a malformed request as a rejection', async () => {
    const response = (statusCode: number, body: unknown) =>
      new errors.ResponseError({ body, statusCode, headers: {}, warnings: null, meta: {} as never });
    const auth = setup([
      () => response(401, { error: { type: 'security_exception', reason: 'missing authentication' } }),
      ok(201),
    ]);
    expect(await auth.writer.write([item('a')], auth.hooks)).toEqual([{ result: 'created' }]);
    expect(auth.events).toEqual(['unreachable', 'reachable']);

    const tooLarge = setup([() => response(413, { error: 'Request Entity Too Large' })]);
    const [result] = await tooLarge.writer.write([item('a')], tooLarge.hooks);
    expect(result).toMatchObject({ result: 'rejected', status: 413 });
  });

  it('stops when the wait hook gives up (stop or rebalance), leaving the documents unsettled', async () => {
    const down = () => new errors.ConnectionError('down');
    const { writer, hooks } = setup([down]);
    hooks.wait = async () => {
      throw new Error('abandoned');
    };
    await expect(writer.write([item('a')], hooks)).rejects.toThrow('abandoned');
  });

  it.each([
    [undefined, 'no reason given'],
    [{ type: 't', reason: 'r' }, 't: r'],
    [{ type: 't', reason: 'r', caused_by: { type: 'c', reason: 'd' } }, 't: r (c: d)'],
  ])('describes %j as %s', (error, text) => {
    expect(describeError(error)).toBe(text);
  });
});

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildFinding } from '../test/finding-fixture';
import { findingAlert } from './alert';
import { createDestinations, DeliveryError } from './destinations';
import { parseRoutingPolicy } from './routing';

// How one HTTP attempt is classified, against a real local server (no Kafka needed).

jest.setTimeout(30_000);

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
}

let server: Server;
let baseUrl: string;
let reply: Reply = { status: 200 };
const seen: Array<{ headers: IncomingHttpHeaders; body: string; url: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      seen.push({ headers: req.headers, body, url: req.url ?? '' });
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(reply.status, reply.headers ?? {}).end(reply.body ?? '');
      }, reply.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function destination(type: 'slack' | 'webhook' | 'splunk-hec', url: string) {
  const spec =
    type === 'slack'
      ? '{ type: slack, urlFrom: { env: URL }, timeout: 300ms }'
      : type === 'webhook'
        ? '{ type: webhook, urlFrom: { env: URL }, hmacKeyFrom: { env: KEY }, timeout: 300ms }'
        : '{ type: splunk-hec, urlFrom: { env: URL }, tokenFrom: { env: KEY }, timeout: 300ms }';
  const policy = parseRoutingPolicy(
    `destinations:\n  d: ${spec}\nroutes:\n  - { name: r, destinations: [d] }\n`,
  );
  const { destinations, problems } = createDestinations(policy, { env: { URL: url, KEY: 'key-1' } }, {});
  expect(problems).toEqual([]);
  return destinations[0]!;
}

async function failureOf(promise: Promise<void>): Promise<DeliveryError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DeliveryError) return error;
    throw error;
  }
  throw new Error('expected the delivery to fail');
}

describe('alerter > destinations (HTTP)', () => {
  beforeEach(() => {
    reply = { status: 200 };
    seen.length = 0;
  });

  test.each([
    [500, true],
    [502, true],
    [503, true],
    [408, true],
    [429, true],
    [400, false],
    [403, false],
    [404, false],
    [410, false],
  ])('HTTP %i is retriable: %p', async (status, retriable) => {
    reply = { status, body: 'no_service' };
    const error = await failureOf(
      destination('slack', `${baseUrl}/services/T/B/SECRET`).send(findingAlert(buildFinding())),
    );
    expect(error).toMatchObject({
      code: 'KAUDIT_ERR_DELIVERY',
      statusCode: status,
      retriable,
      failure: String(status),
    });
    expect(error.message).toBe(`d: HTTP ${status}: no_service`);
    expect(error.message).not.toContain('SECRET');
  });

  test('Retry-After in seconds and as an HTTP date', async () => {
    reply = { status: 429, headers: { 'Retry-After': '7' } };
    expect(
      (await failureOf(destination('slack', baseUrl).send(findingAlert(buildFinding())))).retryAfterMs,
    ).toBe(7000);
    reply = { status: 503, headers: { 'Retry-After': new Date(Date.now() + 60_000).toUTCString() } };
    const ms = (await failureOf(destination('splunk-hec', baseUrl).send(findingAlert(buildFinding()))))
      .retryAfterMs!;
    expect(ms).toBeGreaterThan(55_000);
    expect(ms).toBeLessThanOrEqual(60_000);
  });

  test('a redirect is not followed and is final', async () => {
    reply = { status: 302, headers: { Location: 'https://elsewhere.example.com/' } };
    const error = await failureOf(destination('webhook', baseUrl).send(findingAlert(buildFinding())));
    expect(error).toMatchObject({ retriable: false, statusCode: 302 });
    expect(error.message).toContain('redirects are not followed');
    expect(seen).toHaveLength(1);
  });

  test('no answer within the timeout is a retriable timeout', async () => {
    reply = { status: 200, delayMs: 2000 };
    const error = await failureOf(destination('webhook', baseUrl).send(findingAlert(buildFinding())));
    expect(error).toMatchObject({
      retriable: true,
      failure: 'timeout',
      message: 'd: no answer within 300 ms',
    });
  });

  test('a refused connection is a retriable network error that does not name the URL', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await failureOf(
      destination('slack', `http://127.0.0.1:${port}/SECRET`).send(findingAlert(buildFinding())),
    );
    expect(error).toMatchObject({
      retriable: true,
      failure: 'network',
      message: 'd: request failed (ECONNREFUSED)',
    });
  });

  test('HEC gets the token and the event; the webhook gets the finding and a signature', async () => {
    const finding = buildFinding();
    await destination('splunk-hec', `${baseUrl}/services/collector/event`).send(findingAlert(finding));
    await destination('webhook', `${baseUrl}/hook`).send(findingAlert(finding));
    expect(seen[0]).toMatchObject({
      url: '/services/collector/event',
      headers: { authorization: 'Splunk key-1' },
    });
    expect(JSON.parse(seen[0]!.body)).toMatchObject({ event: finding, sourcetype: 'kaudit:finding' });
    expect(JSON.parse(seen[1]!.body)).toEqual(finding);
    expect(seen[1]!.headers['x-kaudit-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(seen[1]!.headers['content-type']).toBe('application/json');
  });
});

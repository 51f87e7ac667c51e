import { createRedactor, DEFAULT_REDACTION_POLICY } from '@kaudit/redaction';
import { createLogger } from '@kaudit/service-kit';
import { buildEvent } from '@kaudit/testkit';
import { rawConnection } from '../test/helpers';
import { createApp } from './app';
import { createAuthenticator, parseTokenFile } from './auth';
import type { Admission } from './delivery';
import { createSinkMetrics } from './metrics';
import { type SinkServer, startSinkServer } from './server';
import { spoolFullError } from './spool';
import type { OutMessage } from './spool-format';

/**
 * Refusals before the body (issue 10, item 4), through the real server over raw sockets: what a
 * client library would hide (a 100 Continue, a body never sent, the connection closed).
 */
const TOKEN = 'tok-0123456789abcdef-prod';

describe('sink > admission', () => {
  const state = { room: true, held: 0, admitted: 0, delivered: [] as OutMessage[][] };
  let server: SinkServer;

  beforeAll(async () => {
    const app = createApp({
      logger: createLogger({ service: 'sink-test', level: 'silent' }),
      metrics: createSinkMetrics(),
      authenticate: createAuthenticator({
        mtls: false,
        allowedSubjects: new Map(),
        tokens: () => parseTokenFile(`${TOKEN}\n`),
        allowAnonymous: false,
      }),
      ingest: { redactor: createRedactor(DEFAULT_REDACTION_POLICY), eventsTopic: 'events', dlqTopic: 'dlq' },
      delivery: {
        deliver: async (messages) => {
          state.delivered.push([...messages]);
          return 'spool';
        },
        ready: () => state.room,
        admit: (): Admission => {
          if (!state.room) return { ok: false, error: spoolFullError(1024) };
          state.held += 1;
          state.admitted += 1;
          let held = true;
          return {
            ok: true,
            release: () => {
              if (held) state.held -= 1;
              held = false;
            },
          };
        },
      },
      clusterName: 'default',
      maxBodyBytes: 1024 * 1024,
      maxEventBytes: 1024 * 1024,
      requestTimeoutMs: 2000,
    });
    server = await startSinkServer({
      app,
      tls: undefined,
      logger: createLogger({ service: 'sink-test', level: 'silent' }),
      port: 0,
      host: '127.0.0.1',
      requestTimeoutMs: 5000,
    });
  });

  afterAll(async () => {
    await server?.close(100);
  });

  beforeEach(() => {
    Object.assign(state, { room: true, admitted: 0, delivered: [] });
  });

  const body = JSON.stringify({ kind: 'EventList', items: [buildEvent()] });
  const head = (path: string, headers: Record<string, string | number>) =>
    `POST ${path} HTTP/1.1\r\nHost: sink\r\nContent-Type: application/json\r\n${Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('')}\r\n`;
  const statusLine = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n(?:[^\r]*\r\n)*\r\n/;

  it.each([
    ['without credentials: 401, before the URL is decoded', {}, 401, 'KAUDIT_ERR_UNAUTHENTICATED'],
    [
      'authenticated: 400 naming the URL',
      { Authorization: `Bearer ${TOKEN}` },
      400,
      'KAUDIT_ERR_BAD_REQUEST',
    ],
  ])('POST /audit/%%ff %s', async (_name, headers, status, code) => {
    const conn = rawConnection(server.port);
    conn.socket.write(head('/audit/%ff', { ...headers, 'Content-Length': body.length }) + body);
    const text = await conn.until(/\r\n\r\n\{.*\}$/s);
    expect(text).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(text).toContain(`"code":"${code}"`);
    expect(text).not.toContain('body could not be read');
    conn.socket.destroy();
  });

  it('sends no 100 Continue to an unauthenticated client, and closes instead of waiting for the body', async () => {
    const conn = rawConnection(server.port);
    conn.socket.write(head('/audit', { 'Content-Length': body.length, Expect: '100-continue' }));
    const text = await conn.until(statusLine);
    expect(text).toMatch(/^HTTP\/1\.1 401 /);
    expect(text).toMatch(/\r\nWWW-Authenticate: Bearer\r\n/i);
    expect(text).toMatch(/\r\nConnection: close\r\n/i);
    await conn.closed;
    expect(conn.received()).not.toContain('100 Continue');
    expect(state.admitted).toBe(0);
  });

  it('sends no 100 Continue when the spool has no room, and answers 503 + Retry-After', async () => {
    state.room = false;
    const conn = rawConnection(server.port);
    conn.socket.write(
      head('/audit', {
        'Content-Length': body.length,
        Expect: '100-continue',
        Authorization: `Bearer ${TOKEN}`,
      }),
    );
    const text = await conn.until(statusLine);
    expect(text).toMatch(/^HTTP\/1\.1 503 /);
    expect(text).toMatch(/\r\nRetry-After: 10\r\n/i);
    await conn.closed;
    expect(conn.received()).not.toContain('100 Continue');
    expect(state.delivered).toEqual([]);
  });

  it('sends 100 Continue once admitted, then takes the body', async () => {
    const conn = rawConnection(server.port);
    conn.socket.write(
      head('/audit', {
        'Content-Length': body.length,
        Expect: '100-continue',
        Authorization: `Bearer ${TOKEN}`,
      }),
    );
    expect(await conn.until(/\r\n\r\n/)).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    conn.socket.write(body);
    expect(await conn.until(/"accepted":1/)).toMatch(/HTTP\/1\.1 200 /);
    expect(state.delivered).toHaveLength(1);
    conn.socket.destroy();
    await conn.closed;
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.held).toBe(0);
  });

  it('refuses a full spool before the body arrives (the client has sent 1 KiB of 1 MiB)', async () => {
    state.room = false;
    const conn = rawConnection(server.port);
    conn.socket.write(head('/audit', { 'Content-Length': 1024 * 1024, Authorization: `Bearer ${TOKEN}` }));
    conn.socket.write('['.repeat(1024));
    const text = await conn.until(statusLine);
    expect(text).toMatch(/^HTTP\/1\.1 503 /);
    expect(text).toMatch(/\r\nConnection: close\r\n/i);
    await conn.closed;
    expect(state.delivered).toEqual([]);
  });

  it('gives the admitted share back when the request ends, answered or aborted', async () => {
    const refused = rawConnection(server.port);
    refused.socket.write(
      `${head('/audit', { 'Content-Length': 3, Authorization: `Bearer ${TOKEN}` }).replace('application/json', 'text/plain')}abc`,
    );
    expect(await refused.until(statusLine)).toMatch(/^HTTP\/1\.1 415 /);
    const aborted = rawConnection(server.port);
    aborted.socket.write(head('/audit', { 'Content-Length': 100, Authorization: `Bearer ${TOKEN}` }));
    aborted.socket.write('{');
    // Admitted once the server has the headers; then the client goes away mid-body.
    while (state.admitted < 2) await new Promise((resolve) => setImmediate(resolve));
    aborted.socket.destroy();
    await Promise.all([refused.closed, aborted.closed]);
    while (state.held > 0) await new Promise((resolve) => setImmediate(resolve));
    expect(state.held).toBe(0);
  });
});

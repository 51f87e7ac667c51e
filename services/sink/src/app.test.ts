import { gzipSync } from 'node:zlib';
import { buildEvent } from '@kaudit/testkit';
import pino from 'pino';
import request from 'supertest';
import { testApp } from '../test/app-setup';
import type { AppDeps } from './app';
import { createAuthenticator, parseTokenFile } from './auth';
import { spoolFullError } from './spool';
import type { OutMessage } from './spool-format';

const TOKEN = 'tok-0123456789abcdef-prod';
const OTHER_TOKEN = 'tok-0123456789abcdef-any';
const tokens = parseTokenFile(`# comment\n${TOKEN} prod\n${OTHER_TOKEN}\n`);

function setup(
  overrides: Partial<AppDeps> = {},
  deliver?: (messages: readonly OutMessage[]) => Promise<'kafka' | 'spool'>,
) {
  const authenticate = createAuthenticator({
    mtls: false,
    allowedSubjects: new Map(),
    tokens: () => tokens,
    allowAnonymous: false,
  });
  return testApp({ authenticate, overrides, ...(deliver ? { deliver } : {}) });
}

const eventList = (items: unknown[]) =>
  JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items });
const post = (app: ReturnType<typeof setup>['app'], path = '/audit', token = OTHER_TOKEN) =>
  request(app).post(path).set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/json');

describe('sink > app', () => {
  it('accepts an EventList and answers with the counts only after delivery', async () => {
    const { app, delivered } = setup();
    const res = await post(app).send(eventList([buildEvent(), buildEvent()]));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ accepted: 2, rejected: 0, errors: [] });
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.map((m) => m.key)).toEqual([
      'default/alice@example.com',
      'default/alice@example.com',
    ]);
  });

  it('takes the cluster from the URL, or from the token when it names one', async () => {
    const { app, delivered } = setup();
    expect((await post(app, '/audit/staging').send(JSON.stringify(buildEvent()))).status).toBe(200);
    expect((await post(app, '/audit', TOKEN).send(JSON.stringify(buildEvent()))).status).toBe(200);
    expect(delivered.map((d) => d[0]!.key)).toEqual(['staging/alice@example.com', 'prod/alice@example.com']);
    const conflict = await post(app, '/audit/staging', TOKEN).send(JSON.stringify(buildEvent()));
    expect(conflict.status).toBe(403);
    expect(conflict.body.error.code).toBe('KAUDIT_ERR_FORBIDDEN');
    expect((await post(app, '/audit/bad%20name').send(JSON.stringify(buildEvent()))).status).toBe(400);
  });

  it('accepts JSON lines and gzip bodies', async () => {
    const { app } = setup();
    const lines = `${JSON.stringify(buildEvent())}\n${JSON.stringify(buildEvent())}\n`;
    const ndjson = await post(app).set('Content-Type', 'application/x-ndjson').send(lines);
    expect(ndjson.body).toMatchObject({ accepted: 2 });
    // superagent would JSON-encode a Buffer sent as application/json: pass the bytes through as they are.
    const gz = await post(app)
      .set('Content-Encoding', 'gzip')
      .serialize((bytes: unknown) => bytes as string)
      .send(gzipSync(eventList([buildEvent()])) as unknown as string);
    expect(gz.body).toMatchObject({ accepted: 1 });
  });

  it('delivers the valid part of a mixed batch and dead-letters the rest', async () => {
    const { app, delivered, metrics } = setup();
    const res = await post(app).send(
      eventList([buildEvent(), { ...buildEvent(), stage: 'Done' }, buildEvent()]),
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      accepted: 2,
      rejected: 1,
      errors: [{ index: 1, reason: expect.stringMatching(/^stage: /) }],
    });
    expect(delivered[0]!.map((m) => m.topic)).toEqual(['events', 'dlq', 'events']);
    expect(
      (await metrics.registry.getSingleMetricAsString('kaudit_sink_events_rejected_total')).trim(),
    ).toMatch(/ 1$/);
  });

  it('delivers a batch with one item nested 20,000 deep (100 KB) instead of failing it whole', async () => {
    const { app, delivered } = setup({ maxBodyBytes: 1024 * 1024 });
    const deep = `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`;
    const poisoned = `${JSON.stringify(buildEvent({ level: 'RequestResponse' })).slice(0, -1)},"requestObject":${deep}}`;
    const res = await post(app).send(
      `{"kind":"EventList","items":[${JSON.stringify(buildEvent())},${poisoned},${JSON.stringify(buildEvent())}]}`,
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      accepted: 2,
      rejected: 1,
      errors: [{ index: 1, reason: expect.stringMatching(/nested deeper than/) }],
    });
    expect(delivered[0]!.map((m) => m.topic)).toEqual(['events', 'dlq', 'events']);
  });

  it('answers 200 with the counts when no item is valid, once they are dead-lettered (a 400 would be retried)', async () => {
    const { app, delivered } = setup();
    const res = await post(app).send(
      eventList([
        { ...buildEvent(), user: {} },
        { ...buildEvent(), verb: '' },
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      accepted: 0,
      rejected: 2,
      errors: [
        { index: 0, reason: expect.stringMatching(/^user/) },
        { index: 1, reason: expect.stringMatching(/^verb/) },
      ],
    });
    expect(delivered[0]!.map((m) => m.topic)).toEqual(['dlq', 'dlq']);
  });

  it('answers 503, not 200, when the dead letters of an all-invalid batch could not be stored', async () => {
    const { app } = setup({}, async () => {
      throw spoolFullError(1024);
    });
    const res = await post(app).send(JSON.stringify({ ...buildEvent(), user: {} }));
    expect(res.status).toBe(503);
  });

  it.each([
    [
      'not JSON',
      'application/json',
      'this is not json',
      400,
      'KAUDIT_ERR_BAD_REQUEST',
      /body is not valid JSON/,
    ],
    ['empty', 'application/json', '', 400, 'KAUDIT_ERR_BAD_REQUEST', /body is empty/],
    [
      'form data',
      'application/x-www-form-urlencoded',
      'a=b',
      415,
      'KAUDIT_ERR_UNSUPPORTED_MEDIA_TYPE',
      /application\/json/,
    ],
    [
      'too large',
      'application/json',
      `[${'1,'.repeat(40_000)}1]`,
      413,
      'KAUDIT_ERR_PAYLOAD_TOO_LARGE',
      /larger than 65536 bytes/,
    ],
  ])('refuses a body that is %s with a clear error', async (_name, type, body, status, code, message) => {
    const { app, delivered } = setup();
    const res = await post(app).set('Content-Type', type).send(body);
    expect(res.status).toBe(status);
    expect(res.body.error).toEqual({ code, message: expect.stringMatching(message) });
    expect(delivered).toHaveLength(0);
  });

  it.each([
    ['no credentials', undefined],
    ['a wrong token', 'Bearer tok-0123456789abcdef-nope'],
    ['a token of the wrong scheme', `Basic ${TOKEN}`],
  ])('refuses %s with 401 before reading the body', async (_name, authorization) => {
    const { app, delivered } = setup();
    const req = request(app).post('/audit').set('Content-Type', 'application/json');
    if (authorization) req.set('Authorization', authorization);
    const res = await req.send(eventList([buildEvent()]));
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.body.error.code).toBe('KAUDIT_ERR_UNAUTHENTICATED');
    expect(delivered).toHaveLength(0);
  });

  it('answers 503 with Retry-After only when the spool is full', async () => {
    const { app } = setup({}, async () => {
      throw spoolFullError(1024);
    });
    const res = await post(app).send(eventList([buildEvent()]));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('10');
    expect(res.body.error.code).toBe('KAUDIT_ERR_SPOOL');
  });

  it('refuses for want of spool room before the body, logging one line per 10 s instead of one per refusal', async () => {
    const lines: Array<{ level: number; msg: string; refused?: number }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const delivered: unknown[] = [];
    const { app } = setup({
      logger,
      delivery: {
        deliver: async (messages) => {
          delivered.push(messages);
          return 'kafka';
        },
        ready: () => false,
        admit: () => ({ ok: false, error: spoolFullError(1024) }),
      },
    });
    for (let i = 0; i < 5; i++) {
      const res = await post(app).send(eventList([buildEvent()]));
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('10');
    }
    expect(delivered).toEqual([]);
    expect(lines.filter((l) => /spool is full/.test(l.msg))).toEqual([
      expect.objectContaining({ level: 50, refused: 1 }),
    ]);
  });

  it('never shows a stack trace or an internal message to the client', async () => {
    const { app } = setup({}, async () => {
      throw new TypeError('secret internals at /srv/app.js:12');
    });
    const res = await post(app).send(eventList([buildEvent()]));
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: { code: 'KAUDIT_ERR_INTERNAL', message: 'internal error' } });
    expect(res.text).not.toMatch(/internals|app\.js|at /);
  });

  it('answers 503 when delivery takes longer than the request timeout', async () => {
    const { app } = setup({ requestTimeoutMs: 50 }, () => new Promise(() => undefined));
    const res = await post(app).send(eventList([buildEvent()]));
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('KAUDIT_ERR_REQUEST_TIMEOUT');
  });

  it('serves health, readiness and metrics without credentials', async () => {
    const { app } = setup({
      delivery: {
        deliver: async () => 'kafka',
        ready: () => false,
        admit: () => ({ ok: true, release() {} }),
      },
    });
    expect((await request(app).get('/healthz')).status).toBe(200);
    expect((await request(app).get('/readyz')).status).toBe(503);
    const metrics = await request(app).get('/metrics');
    expect(metrics.text).toContain('kaudit_sink_events_accepted_total');
    expect(metrics.text).toContain('kaudit_sink_spool_bytes');
  });
});

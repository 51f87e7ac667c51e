import { gzipSync } from 'node:zlib';
import { AppError } from '@kaudit/service-kit';
import { sourceFixture } from '@kaudit/testkit';
import { createLocalJWKSet, exportJWK, generateKeyPair, type KeyLike, SignJWT } from 'jose';
import request from 'supertest';
import { testApp } from '../test/app-setup';
import type { AppDeps } from './app';
import { createAuthenticator, parseTokenFile } from './auth';
import type { Delivery } from './delivery';
import { parseJwks } from './source-auth';
import type { SourceRoutesDeps } from './source-routes';
import { spoolFullError } from './spool';
import type { OutMessage } from './spool-format';

const KEY = 'firehose-key-0123456789abcdef';
const URL_TOKEN = 'url-token-0123456789abcdef';
const AUDIENCE = 'https://sink.test/pubsub/gke/prod-gke-1';

function setup(
  sources: Partial<NonNullable<AppDeps['sources']>>,
  deliver?: (messages: readonly OutMessage[]) => Promise<'kafka' | 'spool'>,
  admit?: Delivery['admit'],
) {
  return testApp({
    authenticate: createAuthenticator({
      mtls: false,
      allowedSubjects: new Map(),
      tokens: undefined,
      allowAnonymous: false,
    }),
    overrides: {
      maxBodyBytes: 1024 * 1024,
      sources: { firehoseKeys: undefined, pubsub: undefined, ...sources } as Pick<
        SourceRoutesDeps,
        'firehoseKeys' | 'pubsub'
      >,
    },
    ...(deliver ? { deliver } : {}),
    ...(admit ? { admit } : {}),
  });
}

const firehose = (records: Buffer[], requestId = 'req-1') =>
  JSON.stringify({ requestId, timestamp: 1, records: records.map((r) => ({ data: r.toString('base64') })) });
const payload = gzipSync(sourceFixture('eks-subscription-payload.json'));
const control = gzipSync(sourceFixture('eks-control-message.json'));
const keys = parseTokenFile(`${KEY} prod-eks-1\n`);

describe('sink > source routes > firehose', () => {
  const post = (
    app: ReturnType<typeof setup>['app'],
    body: string | Buffer,
    path = '/firehose/eks/prod-eks-1',
  ) =>
    request(app)
      .post(path)
      .set('X-Amz-Firehose-Access-Key', KEY)
      .set('Content-Type', 'application/json')
      .send(body);

  it('stores the events, dead-letters the truncated one, skips control messages, answers in Firehose form', async () => {
    const { app, delivered } = setup({ firehoseKeys: () => keys });
    const res = await post(app, firehose([payload, control]));
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['requestId', 'timestamp']);
    expect(res.body.requestId).toBe('req-1');
    expect(delivered[0]!.map((m) => m.topic)).toEqual(['events', 'events', 'dlq', 'events']);
    expect(delivered[0]!.map((m) => m.key)).toEqual(expect.arrayContaining(['prod-eks-1']));
  });

  it('takes a gzip body', async () => {
    const { app, delivered } = setup({ firehoseKeys: () => keys });
    const res = await request(app)
      .post('/firehose/eks/prod-eks-1')
      .set('X-Amz-Firehose-Access-Key', KEY)
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .serialize((bytes: unknown) => bytes as string)
      .send(gzipSync(firehose([payload])) as unknown as string);
    expect(res.status).toBe(200);
    expect(delivered[0]).toHaveLength(4);
  });

  it.each([
    ['no key', undefined, '/firehose/eks/prod-eks-1', 401],
    ['a wrong key', `${KEY}-forged`, '/firehose/eks/prod-eks-1', 401],
    ['another cluster than the key is for', KEY, '/firehose/eks/other', 403],
    ['a bad cluster name', KEY, '/firehose/eks/bad%20name', 400],
  ])('refuses %s with errorMessage', async (_name, key, path, status) => {
    const { app, delivered } = setup({ firehoseKeys: () => keys });
    const req = request(app)
      .post(path)
      .set('X-Amz-Firehose-Request-Id', 'hdr-1')
      .set('Content-Type', 'application/json');
    const res = await (key ? req.set('X-Amz-Firehose-Access-Key', key) : req).send(firehose([payload]));
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ requestId: 'hdr-1', errorMessage: expect.any(String) });
    expect(JSON.stringify(res.body)).not.toContain(KEY);
    expect(delivered).toEqual([]);
  });

  it('answers 503 when the events cannot be stored, and when the spool has no room', async () => {
    const failing = setup({ firehoseKeys: () => keys }, async () => {
      throw new AppError('KAUDIT_ERR_SPOOL', 'spool write failed', { statusCode: 503 });
    });
    expect((await post(failing.app, firehose([payload]))).status).toBe(503);
    const full = setup({ firehoseKeys: () => keys }, undefined, () => ({
      ok: false,
      error: spoolFullError(1024),
    }));
    const res = await post(full.app, firehose([payload]));
    expect(res.status).toBe(503);
    expect(res.body.errorMessage).toMatch(/spool is full/);
  });

  it('answers 400 for a body that is no Firehose request, 404 when the route is off', async () => {
    const { app } = setup({ firehoseKeys: () => keys });
    const res = await post(app, '{"requestId":"r-9","records":[]}');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ requestId: 'r-9', errorMessage: 'timestamp must be a number' });
    expect((await post(setup({}).app, firehose([payload]))).status).toBe(404);
  });
});

describe('sink > source routes > pubsub', () => {
  let key: KeyLike;
  let pubsub: NonNullable<SourceRoutesDeps['pubsub']>;
  const lines = sourceFixture('gke-log-entries.jsonl').toString().trim().split('\n');
  const push = (data: string) =>
    JSON.stringify({
      message: { data: Buffer.from(data).toString('base64'), messageId: '1' },
      subscription: 'projects/p/subscriptions/s',
    });
  const token = (audience = AUDIENCE, email = 'push@p.iam.gserviceaccount.com', signer = key) =>
    new SignJWT({ email, email_verified: true })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer('accounts.google.com')
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(signer);

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    key = pair.privateKey;
    const jwks = createLocalJWKSet(
      parseJwks(
        JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' }] }),
      ),
    );
    pubsub = {
      jwks: () => jwks,
      audience: AUDIENCE,
      serviceAccount: 'push@p.iam.gserviceaccount.com',
      urlTokens: () => parseTokenFile(`${URL_TOKEN}\n`),
    };
  });

  it('converts the LogEntry and stores it under the route cluster', async () => {
    const { app, delivered } = setup({ pubsub });
    const res = await request(app)
      .post('/pubsub/gke/prod-gke-1')
      .set('Authorization', `Bearer ${await token()}`)
      .set('Content-Type', 'application/json')
      .send(push(lines[0]!));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: 1, rejected: 0 });
    const envelope = JSON.parse(delivered[0]![0]!.value);
    expect(envelope).toMatchObject({
      cluster: 'prod-gke-1',
      event: { verb: 'get', objectRef: { resource: 'secrets' } },
    });
    // The Secret's data in the response never reaches the message.
    expect(delivered[0]![0]!.value).not.toContain('TUtHS0VQbGFudGVkMDAz');
  });

  it('dead-letters an entry naming another cluster than the route', async () => {
    const { app, delivered } = setup({ pubsub });
    const res = await request(app)
      .post(`/pubsub/gke/other-cluster?token=${URL_TOKEN}`)
      .set('Content-Type', 'application/json')
      .send(push(lines[0]!));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: 0, rejected: 1 });
    expect(delivered[0]!.map((m) => m.topic)).toEqual(['dlq']);
  });

  it.each([
    ['no token', async () => undefined, 401],
    ['another audience', async () => `Bearer ${await token('https://elsewhere')}`, 401],
    [
      'another service account',
      async () => `Bearer ${await token(AUDIENCE, 'evil@p.iam.gserviceaccount.com')}`,
      403,
    ],
    [
      'a key not in the JWKS',
      async () => `Bearer ${await token(AUDIENCE, undefined, (await generateKeyPair('RS256')).privateKey)}`,
      401,
    ],
    ['not a JWT', async () => 'Bearer not-a-jwt', 401],
  ])('refuses %s', async (_name, header, status) => {
    const { app, delivered } = setup({ pubsub });
    const req = request(app).post('/pubsub/gke/prod-gke-1').set('Content-Type', 'application/json');
    const value = await header();
    const res = await (value ? req.set('Authorization', value) : req).send(push(lines[0]!));
    expect(res.status).toBe(status);
    expect(delivered).toEqual([]);
  });

  it('answers 503 when the events cannot be stored, 400 for no push envelope, 404 when off', async () => {
    const failing = setup({ pubsub }, async () => {
      throw new AppError('KAUDIT_ERR_SPOOL', 'spool write failed', { statusCode: 503 });
    });
    const url = `/pubsub/gke/prod-gke-1?token=${URL_TOKEN}`;
    const res = await request(failing.app)
      .post(url)
      .set('Content-Type', 'application/json')
      .send(push(lines[1]!));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    const bad = await request(setup({ pubsub }).app)
      .post(url)
      .set('Content-Type', 'application/json')
      .send('{"x":1}');
    expect(bad.status).toBe(400);
    const off = await request(setup({}).app)
      .post(url)
      .set('Content-Type', 'application/json')
      .send(push(lines[1]!));
    expect(off.status).toBe(404);
  });
});

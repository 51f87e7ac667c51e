import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DeadLetterSchema, EnvelopeSchema } from '@kaudit/audit-schema';
import { createKafka, ensureTopics } from '@kaudit/service-kit';
import { plantedSecrets, sourceFixture, stackEnv, uniqueName } from '@kaudit/testkit';
import { exportJWK, generateKeyPair, type KeyLike, SignJWT } from 'jose';
import { capturingLogger, postAudit, readTopic } from '../test/helpers';
import { loadSinkConfig } from './config';
import { type RunningSink, startSink } from './service';

/**
 * The managed-cluster routes against the real Kafka: a Firehose batch (EKS) and Pub/Sub pushes (GKE)
 * land on the events topic once each with the route's cluster, planted Secret values nowhere, a
 * truncated CloudWatch event dead-lettered, a failed write answered so the provider retries, and a
 * forged or absent credential refused.
 */
const { kafkaBrokers } = stackEnv();
const policyFile = join(__dirname, '../../../policies/redaction.yaml');
const FIREHOSE_KEY = `fh-${uniqueName('key')}`;
const URL_TOKEN = `ps-${uniqueName('token')}`;
const AUDIENCE = 'https://sink.example.com/pubsub/gke/prod-gke-1';
const SERVICE_ACCOUNT = 'kaudit-push@example-project.iam.gserviceaccount.com';

const { logger, lines: logLines } = capturingLogger();

const b64gz = (file: string) => gzipSync(sourceFixture(file)).toString('base64');
const firehoseBody = (requestId: string) =>
  JSON.stringify({
    requestId,
    timestamp: 1764494103000,
    records: [{ data: b64gz('eks-subscription-payload.json') }, { data: b64gz('eks-control-message.json') }],
  });
const gkeLines = sourceFixture('gke-log-entries.jsonl').toString().trim().split('\n');
const pushBody = (line: string, messageId: string) =>
  JSON.stringify({
    message: {
      data: Buffer.from(line).toString('base64'),
      attributes: {},
      messageId,
      publishTime: '2026-11-30T10:00:02Z',
    },
    subscription: 'projects/example-project/subscriptions/kaudit-gke',
  });

describe('sink > managed-cluster sources (real Kafka)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-sources-'));
  const eventsTopic = uniqueName('it-sources-events');
  const dlqTopic = uniqueName('it-sources-dlq');
  const kafka = createKafka({ clientId: 'sink-sources-test', brokers: kafkaBrokers, logger });
  let sink: RunningSink;
  let privateKey: KeyLike;
  let foreignKey: KeyLike;
  const jwt = async (key: KeyLike, claims: Record<string, unknown> = {}, audience = AUDIENCE) =>
    new SignJWT({ email: SERVICE_ACCOUNT, email_verified: true, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'google-1', typ: 'JWT' })
      .setIssuer('https://accounts.google.com')
      .setAudience(audience)
      .setSubject('112233445566778899')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(key);
  const post = (path: string, body: string, headers: Record<string, string> = {}, extra = {}) =>
    postAudit({ port: sink.port, path, body, headers, ...extra });

  beforeAll(async () => {
    const google = await generateKeyPair('RS256');
    privateKey = google.privateKey as KeyLike;
    foreignKey = (await generateKeyPair('RS256')).privateKey as KeyLike;
    const jwk = { ...(await exportJWK(google.publicKey)), kid: 'google-1', alg: 'RS256', use: 'sig' };
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    writeFileSync(join(dir, 'firehose-keys'), `${FIREHOSE_KEY} prod-eks-1\n`);
    writeFileSync(join(dir, 'pubsub-tokens'), `${URL_TOKEN}\n`);
    await ensureTopics(kafka, [
      { topic: eventsTopic, numPartitions: 3 },
      { topic: dlqTopic, numPartitions: 1 },
    ]);
    const config = loadSinkConfig({
      KAFKA_BROKERS: kafkaBrokers.join(','),
      SINK_INSECURE_DEV: 'true',
      SINK_PORT: '0',
      SINK_HOST: '127.0.0.1',
      AUDIT_EVENTS_TOPIC: eventsTopic,
      AUDIT_DLQ_TOPIC: dlqTopic,
      SINK_SPOOL_DIR: join(dir, 'spool'),
      SINK_REQUEST_TIMEOUT_MS: '4s',
      SINK_REDACTION_POLICY_FILE: policyFile,
      SINK_FIREHOSE_ACCESS_KEY_FILE: join(dir, 'firehose-keys'),
      SINK_PUBSUB_JWKS_FILE: join(dir, 'jwks.json'),
      SINK_PUBSUB_AUDIENCE: AUDIENCE,
      SINK_PUBSUB_SERVICE_ACCOUNT: SERVICE_ACCOUNT,
      SINK_PUBSUB_TOKEN_FILE: join(dir, 'pubsub-tokens'),
    });
    sink = await startSink(config, logger);
    for (let i = 0; i < 100 && !sink.sender.isConnected(); i++) await new Promise((r) => setTimeout(r, 100));
  });

  afterAll(async () => {
    await sink?.stop();
  });

  /** The next deliver() fails on both paths (Kafka and spool), as a broker and a disk failing together. */
  const failNextWrite = () => {
    const send = sink.sender.send.bind(sink.sender);
    const append = sink.spool.append.bind(sink.spool);
    sink.sender.send = async () => {
      sink.sender.send = send;
      throw new Error('injected: Kafka refused');
    };
    sink.spool.append = async () => {
      sink.spool.append = append;
      throw new Error('injected: disk full');
    };
  };

  it('refuses a forged or absent credential, in the format each provider reads', async () => {
    const firehose = [
      await post('/firehose/eks/prod-eks-1', firehoseBody('r-none')),
      await post('/firehose/eks/prod-eks-1', firehoseBody('r-forged'), {
        'X-Amz-Firehose-Access-Key': `${FIREHOSE_KEY}x`,
      }),
      await post('/firehose/eks/prod-other', firehoseBody('r-other'), {
        'X-Amz-Firehose-Access-Key': FIREHOSE_KEY,
      }),
    ];
    expect(firehose.map((a) => a.status)).toEqual([401, 401, 403]);
    for (const answer of firehose) {
      expect(Object.keys(answer.body).sort()).toEqual(['errorMessage', 'requestId', 'timestamp']);
      expect(typeof answer.body.timestamp).toBe('number');
    }
    const push = pushBody(gkeLines[0]!, 'forged');
    const pubsub = [
      await post('/pubsub/gke/prod-gke-1', push),
      await post('/pubsub/gke/prod-gke-1', push, { Authorization: `Bearer ${await jwt(foreignKey)}` }),
      await post('/pubsub/gke/prod-gke-1', push, {
        Authorization: `Bearer ${await jwt(privateKey)}x`,
      }),
      await post('/pubsub/gke/prod-gke-1', push, {
        Authorization: `Bearer ${await jwt(privateKey, { email: 'evil@example.com' })}`,
      }),
      await post('/pubsub/gke/prod-gke-1', push, {
        Authorization: `Bearer ${await jwt(privateKey, {}, 'https://elsewhere')}`,
      }),
      await post('/pubsub/gke/prod-gke-1?token=wrong-token-value-123', push),
    ];
    expect(pubsub.map((a) => a.status)).toEqual([401, 401, 401, 403, 401, 401]);
    // Nothing of a refused request reached Kafka.
    expect(await readTopic(kafka, eventsTopic, 5000)).toEqual([]);
  });

  it('Firehose: a failed write answers 503, the retry stores every event once, truncated ones dead-lettered', async () => {
    const headers = {
      'X-Amz-Firehose-Access-Key': FIREHOSE_KEY,
      'X-Amz-Firehose-Request-Id': 'req-1',
      'Content-Encoding': 'gzip',
    };
    const body = gzipSync(firehoseBody('req-1'));
    failNextWrite();
    const failed = await postAudit({ port: sink.port, path: '/firehose/eks/prod-eks-1', body, headers });
    expect(failed.status).toBe(503);
    expect(failed.body).toMatchObject({ requestId: 'req-1', errorMessage: expect.any(String) });
    const ok = await postAudit({ port: sink.port, path: '/firehose/eks/prod-eks-1', body, headers });
    expect(ok.status).toBe(200);
    expect(Object.keys(ok.body).sort()).toEqual(['requestId', 'timestamp']);
    expect(ok.body.requestId).toBe('req-1');
  });

  it('Pub/Sub: OIDC and URL-token pushes are stored; a failed write answers 503 for redelivery', async () => {
    const bearer = { Authorization: `Bearer ${await jwt(privateKey)}` };
    failNextWrite();
    const failed = await post('/pubsub/gke/prod-gke-1', pushBody(gkeLines[0]!, 'm-0'), bearer);
    expect(failed.status).toBe(503);
    const answers = [
      await post('/pubsub/gke/prod-gke-1', pushBody(gkeLines[0]!, 'm-0'), bearer),
      await post('/pubsub/gke/prod-gke-1', pushBody(gkeLines[1]!, 'm-1'), bearer),
      await post('/pubsub/gke/prod-gke-1', pushBody(gkeLines[2]!, 'm-2'), bearer),
      await post(`/pubsub/gke/prod-gke-1?token=${URL_TOKEN}`, pushBody(gkeLines[3]!, 'm-3')),
    ];
    expect(answers.map((a) => [a.status, a.body.accepted])).toEqual([
      [200, 1],
      [200, 1],
      [200, 1],
      [200, 1],
    ]);
  });

  it('the topic holds every event exactly once with its cluster, and no planted secret anywhere', async () => {
    const events = await readTopic(kafka, eventsTopic);
    const envelopes = events.map((m) => EnvelopeSchema.parse(JSON.parse(m.value)));
    // Originals once each; gke-0004 (an RBAC write) also has a chain-step copy on each of 3 partitions.
    const ids = envelopes
      .filter((e) => e.copy === undefined)
      .map((e) => `${e.cluster}/${e.event.auditID}`)
      .sort();
    expect(envelopes.filter((e) => e.copy !== undefined).map((e) => e.event.auditID)).toEqual(
      Array(3).fill('gke-0004'),
    );
    expect(ids).toEqual([
      'prod-eks-1/7f1c9a52-1d3e-4c1b-9a57-000000000001',
      'prod-eks-1/7f1c9a52-1d3e-4c1b-9a57-000000000002',
      'prod-eks-1/7f1c9a52-1d3e-4c1b-9a57-000000000003',
      'prod-gke-1/gke-0001',
      'prod-gke-1/gke-0002',
      'prod-gke-1/gke-0003',
      'prod-gke-1/gke-0004',
    ]);
    const gke = envelopes.find((e) => e.event.auditID === 'gke-0001')!;
    expect(gke.event).toMatchObject({ verb: 'get', user: { username: 'alice@example.com' } });
    expect(gke.event.annotations?.['kaudit.dev/inferred']).toContain('stage');

    const dead = (await readTopic(kafka, dlqTopic)).map((m) => DeadLetterSchema.parse(JSON.parse(m.value)));
    expect(dead.map((d) => [d.cluster, d.reason.includes('truncated by CloudWatch Logs')])).toEqual([
      ['prod-eks-1', true],
    ]);

    const planted = [
      ...plantedSecrets(sourceFixture('eks-subscription-payload.json').toString()),
      ...plantedSecrets(sourceFixture('gke-logging-read.json').toString()),
    ];
    expect(planted.length).toBeGreaterThanOrEqual(4);
    const everything = [
      ...events.map((m) => m.value),
      ...dead.map((d) => JSON.stringify(d)),
      ...logLines,
    ].join('\n');
    for (const secret of planted) expect(everything).not.toContain(secret);
  });
});

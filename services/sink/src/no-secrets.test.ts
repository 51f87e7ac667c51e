import { Writable } from 'node:stream';
import { createRedactor, DEFAULT_REDACTION_POLICY } from '@kaudit/redaction';
import { buildEvent, loadSinkDefects, plantedSecrets } from '@kaudit/testkit';
import pino from 'pino';
import request from 'supertest';
import { createApp } from './app';
import { createAuthenticator, parseTokenFile } from './auth';
import { createSinkMetrics } from './metrics';
import type { OutMessage } from './spool-format';

/**
 * Redaction fails closed, whatever the input's shape: every body of the adversarial campaign
 * (../shared/sink-defects) and every shape of its classes, posted to the app, leaves no planted value
 * (raw or base64) in what goes to Kafka (events and dead letters), in the HTTP answer, or in any log line
 * at any level.
 */
const TOKEN = 'tok-no-secrets-0123456789';

function sinkUnderTest() {
  const delivered: OutMessage[] = [];
  let logs = '';
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _encoding, done) {
        logs += chunk.toString();
        done();
      },
    }),
  );
  const app = createApp({
    logger,
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
        delivered.push(...messages);
        return 'kafka';
      },
      ready: () => true,
      admit: () => ({ ok: true, release: () => undefined }),
    },
    clusterName: 'c',
    maxBodyBytes: 8 * 1024 * 1024,
    maxEventBytes: 1024 * 1024,
    requestTimeoutMs: 5000,
  });
  return { app, delivered, logs: () => logs };
}

async function postAndCollect(body: string | Buffer, contentType = 'application/json') {
  const sink = sinkUnderTest();
  const res = await request(sink.app)
    .post('/audit')
    .set('Authorization', `Bearer ${TOKEN}`)
    .set('Content-Type', contentType)
    .send(body.toString()); // a string: superagent would JSON-encode a Buffer as {type, data}
  return {
    res,
    delivered: sink.delivered,
    output: `${sink.delivered.map((m) => m.value).join('\n')}\n${res.text}\n${sink.logs()}`,
  };
}

function expectNoPlanted(input: string, output: string) {
  const planted = plantedSecrets(input);
  expect(planted.length).toBeGreaterThan(0); // the case really carries a secret
  for (const value of planted)
    expect({ value, found: output.includes(value) }).toEqual({ value, found: false });
}

const PW = 'MK5ecret0pw1';
const PW64 = Buffer.from(PW).toString('base64');
const data = { pw: PW64 };
const secretObject = { kind: 'Secret', apiVersion: 'v1', metadata: { name: 's' }, data, type: 'Opaque' };
const onSecrets = (over: Record<string, unknown>) =>
  buildEvent({
    level: 'RequestResponse',
    verb: 'patch',
    objectRef: { resource: 'secrets', namespace: 'ns', name: 's' },
    ...over,
  });

/** Shapes of the campaign's classes beyond its files; each plants PW (or its base64) where it must not survive. */
const shapes: [string, unknown, string?][] = [
  [
    'a kindless watch event',
    onSecrets({ responseObject: { type: 'ADDED', object: { metadata: {}, data } } }),
  ],
  [
    'a WatchEvent of a kindless object',
    onSecrets({ responseObject: { kind: 'WatchEvent', object: { data } } }),
  ],
  ['a kindless list', onSecrets({ responseObject: { items: [{ data }] } })],
  ['a kindless table', onSecrets({ responseObject: { rows: [{ cells: [PW], object: { data } }] } })],
  ['resource Secrets', onSecrets({ objectRef: { resource: 'Secrets' }, requestObject: { data } })],
  ['resource SECRETS', onSecrets({ objectRef: { resource: 'SECRETS' }, requestObject: { data } })],
  ['resource secret (singular)', onSecrets({ objectRef: { resource: 'secret' }, requestObject: { data } })],
  [
    'apiGroup core',
    onSecrets({ objectRef: { resource: 'secrets', apiGroup: 'core' }, requestObject: { data } }),
  ],
  [
    'apiGroup CORE',
    onSecrets({ objectRef: { resource: 'secrets', apiGroup: 'CORE' }, requestObject: { data } }),
  ],
  [
    'subresource Token',
    onSecrets({
      objectRef: { resource: 'serviceaccounts', subresource: 'Token' },
      responseObject: { status: { token: PW } },
    }),
  ],
  [
    'status.Token',
    onSecrets({
      objectRef: { resource: 'serviceaccounts', subresource: 'token' },
      responseObject: { status: { Token: PW } },
    }),
  ],
  [
    'kind: secret in a ConfigMap event',
    onSecrets({ objectRef: { resource: 'configmaps' }, requestObject: { kind: 'secret', data } }),
  ],
  [
    'kind: SECRETLIST in a ConfigMap event',
    onSecrets({
      objectRef: { resource: 'configmaps' },
      requestObject: { kind: 'SECRETLIST', items: [{ data }] },
    }),
  ],
  [
    'data under __proto__',
    `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"p","stage":"ResponseComplete","requestURI":"/","verb":"patch","user":{"username":"u"},"objectRef":{"resource":"configmaps"},"requestObject":{"__proto__":{"data":{"pw":"${PW64}"}}},"requestReceivedTimestamp":"2024-01-01T00:00:00Z","stageTimestamp":"2024-01-01T00:00:00Z"}`,
  ],
  ['a key Data', onSecrets({ requestObject: { Data: data } })],
  ['a key STRINGDATA', onSecrets({ requestObject: { STRINGDATA: { pw: PW } } })],
  ['a JSON patch /DATA/pw', onSecrets({ requestObject: [{ op: 'add', path: '/DATA/pw', value: PW64 }] })],
  [
    'a JSON patch replacing the root',
    onSecrets({ requestObject: [{ op: 'replace', path: '', value: { data } }] }),
  ],
  ['a JSON patch with Value', onSecrets({ requestObject: [{ op: 'add', path: '/data/pw', Value: PW64 }] })],
  [
    'last-applied in another case',
    onSecrets({
      requestObject: {
        metadata: { annotations: { 'Kubectl.Kubernetes.io/Last-Applied-Configuration': PW } },
      },
    }),
  ],
  [
    'a webhook patch annotation in another case',
    onSecrets({ annotations: { 'Patch.Webhook.Admission.k8s.io/round_0_index_0': PW64 } }),
  ],
  [
    'a valid event without objectRef',
    buildEvent({ level: 'RequestResponse', objectRef: undefined, requestObject: { data } }),
  ],
  ['an objectRef without resource', onSecrets({ objectRef: { name: 's' }, requestObject: { data } })],
  ['a field an Event does not have', onSecrets({ secretData: { pw: PW }, requestObject: undefined })],
  ['a field of user an Event does not have', onSecrets({ user: { username: 'u', password: PW } })],
  [
    'an envelope posted back',
    { cluster: 'c', receivedAt: '2024-01-01T00:00:00Z', event: onSecrets({ requestObject: { data } }) },
  ],
  [
    'an EventList item that is an array',
    { kind: 'EventList', items: [[onSecrets({ requestObject: { data } })]] },
  ],
  [
    'an NDJSON line that is an array',
    JSON.stringify([onSecrets({ requestObject: { data } })]),
    'application/x-ndjson',
  ],
  [
    'an Event Hubs body',
    { records: [{ properties: { log: JSON.stringify(onSecrets({ requestObject: secretObject })) } }] },
  ],
  ['a Secret posted as an item', { kind: 'EventList', items: [secretObject] }],
  ['an invalid event with a secret annotation key', { ...onSecrets({}), annotations: { [PW]: 5 } }],
  [
    'an invalid event with a secret user.extra key',
    { ...onSecrets({}), user: { username: 'u', extra: { [PW]: 'x' } } },
  ],
  ['an invalid event with secret bodies', { ...onSecrets({ requestObject: { data } }), verb: 7 }],
  ['a line that is not JSON', `{"data":{"pw":"${PW64}"`, 'application/x-ndjson'],
  ['a body that is not JSON', `password=${PW}`],
];

describe('sink > no secret value leaves the sink, whatever the shape', () => {
  it.each(loadSinkDefects().map((d) => [d.file, d] as const))('%s', async (_file, defect) => {
    const { res, output } = await postAndCollect(defect.body, defect.contentType);
    expect(res.status).toBeLessThan(500);
    // The dos-* files plant no secret (their class is cost, tested against the real Kafka).
    if (!defect.file.startsWith('dos-')) expectNoPlanted(defect.body.toString(), output);
  });

  it.each(shapes.map(([name, item, ct]) => [name, item, ct ?? 'application/json'] as const))(
    '%s',
    async (_name, item, contentType) => {
      const body = typeof item === 'string' ? item : JSON.stringify(item);
      const { res, output } = await postAndCollect(body, contentType);
      expect(res.status).toBeLessThan(500);
      expect(output).not.toContain(PW);
      expect(output).not.toContain(PW64);
      expect(output).not.toContain(PW64.slice(0, 12));
    },
  );

  it('keeps the bodies of resources no rule protects: a ConfigMap keeps its data', async () => {
    const event = buildEvent({
      level: 'RequestResponse',
      objectRef: { resource: 'configmaps', namespace: 'ns', name: 'cm' },
      requestObject: { kind: 'ConfigMap', data: { setting: 'keep-me' } },
    });
    const { res, delivered } = await postAndCollect(JSON.stringify(event));
    expect(res.body).toMatchObject({ accepted: 1 });
    expect(JSON.parse(delivered[0]!.value).event.requestObject).toEqual({
      kind: 'ConfigMap',
      data: { setting: 'keep-me' },
    });
  });

  it('takes an Event Hubs body as a batch of its events', async () => {
    const events = [buildEvent(), buildEvent(), buildEvent()];
    const body = {
      records: events.map((e) => ({ category: 'kube-audit', properties: { log: JSON.stringify(e) } })),
    };
    const { res, delivered } = await postAndCollect(JSON.stringify(body));
    expect(res.body).toEqual({ accepted: 3, rejected: 0, errors: [] });
    expect(delivered.map((m) => JSON.parse(m.value).event.auditID)).toEqual(events.map((e) => e.auditID));
  });

  it('takes an NDJSON line that is an array as its events', async () => {
    const { res } = await postAndCollect(
      `${JSON.stringify([buildEvent(), buildEvent()])}\n${JSON.stringify(buildEvent())}\n`,
      'application/x-ndjson',
    );
    expect(res.body).toMatchObject({ accepted: 3, rejected: 0 });
  });

  it('dead-letters an item that is not a single event object with no body, only the reason and size', async () => {
    const { res, delivered } = await postAndCollect(
      JSON.stringify({ kind: 'EventList', items: [[buildEvent()], { cluster: 'c', event: buildEvent() }] }),
    );
    expect(res.body).toMatchObject({ accepted: 0, rejected: 2 });
    const letters = delivered.map((m) => JSON.parse(m.value));
    expect(letters.map((l) => l.raw)).toEqual([null, null]);
    expect(letters[0].reason).toMatch(/an array of 1 element\(s\), not an event object, and was withheld/);
    expect(letters[1].reason).toMatch(/kaudit envelope/);
    expect(letters[0].reason).toMatch(/\d+ bytes/);
  });
});

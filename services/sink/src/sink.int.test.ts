import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AuditEvent,
  DeadLetterSchema,
  EnvelopeSchema,
  partitionKey,
  REDACTED_ANNOTATION,
} from '@kaudit/audit-schema';
import { LAST_APPLIED_ANNOTATION } from '@kaudit/redaction';
import { createKafka, ensureTopics } from '@kaudit/service-kit';
import {
  buildEvent,
  type DevCerts,
  ensureDevCerts,
  type ForeignClientCerts,
  loadSampleEvents,
  samplesDir,
  stackEnv,
  uniqueName,
} from '@kaudit/testkit';
import { capturingLogger, postAudit, readTopic } from '../test/helpers';
import { loadSinkConfig } from './config';
import { type RunningSink, startSink } from './service';

const { kafkaBrokers } = stackEnv();
const CLUSTER = 'it-cluster';
const TOKEN = `tok-${uniqueName('sink')}`;
const policyFile = join(__dirname, '../../../policies/redaction.yaml');

// Planted secret values: none may appear in any message of either topic, or in any log line.
const PLANTED = {
  data: 'cGxhbnRlZC1kYXRhLXZhbHVlLTAwMQ==',
  stringData: 'planted-string-data-value-002',
  lastApplied: 'planted-last-applied-value-003',
  tokenRequest: 'eyJhbGciOiJSUzI1NiJ9.planted-token-request-004',
  tokenReview: 'eyJhbGciOiJSUzI1NiJ9.planted-token-review-005',
  patch: 'planted-json-patch-value-006',
  deadLetter: 'planted-dead-letter-value-007',
};

const { logger, lines: logLines } = capturingLogger();

describe('sink > end to end (real Kafka)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-int-'));
  let certs: DevCerts & { foreign: ForeignClientCerts };
  const eventsTopic = uniqueName('it-sink-events');
  const dlqTopic = uniqueName('it-sink-dlq');
  const kafka = createKafka({ clientId: 'sink-int-test', brokers: kafkaBrokers, logger });
  let sink: RunningSink;
  const post = (body: unknown, extra: Partial<Parameters<typeof postAudit>[0]> = {}) =>
    postAudit({
      port: sink.port,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      tls: { ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey },
      ...extra,
    });
  const eventList = (items: unknown[]) => ({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items });

  beforeAll(async () => {
    // The foreign client (same CN, another CA) is what the sink must refuse.
    certs = await ensureDevCerts(join(dir, 'certs'), { foreignClient: true });
    await ensureTopics(kafka, [
      { topic: eventsTopic, numPartitions: 3 },
      { topic: dlqTopic, numPartitions: 1 },
    ]);
    writeFileSync(join(dir, 'tokens'), `# test tokens\n${TOKEN}\n`);
    const config = loadSinkConfig({
      KAFKA_BROKERS: kafkaBrokers.join(','),
      SINK_PORT: '0',
      SINK_HOST: '127.0.0.1',
      SINK_TLS_CERT_FILE: certs.serverCert,
      SINK_TLS_KEY_FILE: certs.serverKey,
      SINK_CLIENT_CA_FILE: certs.caCert,
      SINK_CLIENT_ALLOWED_SUBJECTS: `${certs.clientCommonName}=${CLUSTER}`,
      SINK_AUTH_TOKEN_FILE: join(dir, 'tokens'),
      AUDIT_EVENTS_TOPIC: eventsTopic,
      AUDIT_DLQ_TOPIC: dlqTopic,
      SINK_SPOOL_DIR: join(dir, 'spool'),
      SINK_REDACTION_POLICY_FILE: policyFile,
    });
    sink = await startSink(config, logger);
    // Connected before the first request, so these tests exercise the direct path.
    for (let i = 0; i < 100 && !sink.sender.isConnected(); i++) await new Promise((r) => setTimeout(r, 100));
  });

  afterAll(async () => {
    await sink?.stop();
  });

  it('accepts every real sample event and puts it on the topic keyed by cluster and identity', async () => {
    const files = [
      'openshift/ocp-4.12-audit.jsonl',
      'openshift/ocp-aws-2024-audit-with-bad-line.jsonl',
      'openshift/raw-kubernetes-event.json',
      'openshift/raw-oauth-apiserver-event.json',
      'openshift/raw-openshift-event.json',
      'openshift/rosa-lease-update.json',
      'audit2rbac/demo-v1beta1.jsonl',
      'aks/eventhub-batch.json',
      'aks/single-event-bom.json',
      'minikube/pod-exec.jsonl',
      'minikube/privileged-pod.jsonl',
      ...readdirSync(join(samplesDir, 'falco-secrets')).map((f) => `falco-secrets/${f}`),
    ];
    const events: AuditEvent[] = files.flatMap((file) => loadSampleEvents(file));
    expect(events.length).toBeGreaterThan(990);
    // Batches of at most 400, several in flight, as kube-apiserver's batch webhook backend sends them.
    const batches: AuditEvent[][] = [];
    for (let i = 0; i < events.length; i += 400) batches.push(events.slice(i, i + 400));
    const answers = await Promise.all(batches.map((batch) => post(eventList(batch))));
    for (const [i, answer] of answers.entries()) {
      expect({ status: answer.status, body: answer.body }).toEqual({
        status: 200,
        body: { accepted: batches[i]!.length, rejected: 0, errors: [] },
      });
    }

    const onTopic = await readTopic(kafka, eventsTopic);
    const seen = new Map<string, number>();
    for (const message of onTopic) {
      const envelope = EnvelopeSchema.parse(JSON.parse(message.value));
      expect(envelope.cluster).toBe(CLUSTER);
      if (envelope.copy !== undefined) continue; // a chain step's copy: the next test
      expect(message.key).toBe(partitionKey(CLUSTER, envelope.event));
      const id = `${message.key}|${envelope.event.auditID}|${envelope.event.stage}`;
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    const expected = new Map<string, number>();
    for (const event of events) {
      const id = `${partitionKey(CLUSTER, event)}|${event.auditID}|${event.stage}`;
      expected.set(id, (expected.get(id) ?? 0) + 1);
    }
    for (const [id, count] of expected) expect({ id, count: seen.get(id) ?? 0 }).toEqual({ id, count });
    // kubelet, impersonation (audit2rbac) and service accounts each land under their own key.
    expect(new Set(onTopic.map((m) => m.key)).size).toBeGreaterThan(10);
  });

  it('puts a chain step beside its copies: an RBAC write on every partition, a TokenRequest on its account', async () => {
    const binding = buildEvent({
      auditID: uniqueName('binding'),
      verb: 'create',
      user: { username: 'mallory' },
      objectRef: {
        resource: 'clusterrolebindings',
        apiGroup: 'rbac.authorization.k8s.io',
        apiVersion: 'v1',
        name: 'pwn',
      },
      responseStatus: { code: 201 },
    });
    const token = buildEvent({
      auditID: uniqueName('token'),
      verb: 'create',
      user: { username: 'mallory' },
      objectRef: {
        resource: 'serviceaccounts',
        subresource: 'token',
        namespace: 'kube-system',
        name: 'deployer',
        apiVersion: 'v1',
      },
      responseStatus: { code: 201 },
    });
    const denied = buildEvent({
      auditID: uniqueName('denied'),
      verb: 'create',
      user: { username: 'mallory' },
      objectRef: { resource: 'clusterrolebindings', apiGroup: 'rbac.authorization.k8s.io', name: 'no' },
      responseStatus: { code: 403 },
    });
    const answer = await post(eventList([binding, token, denied]));
    expect(answer.body).toEqual({ accepted: 3, rejected: 0, errors: [] });

    const ours = new Set([binding.auditID, token.auditID, denied.auditID]);
    const onTopic = (await readTopic(kafka, eventsTopic)).flatMap((message) => {
      const envelope = EnvelopeSchema.parse(JSON.parse(message.value));
      return ours.has(envelope.event.auditID) ? [{ ...message, envelope }] : [];
    });
    const of = (auditID: string, copy: boolean) =>
      onTopic.filter((m) => m.envelope.event.auditID === auditID && (m.envelope.copy !== undefined) === copy);
    // Each original once, under its actor's key.
    for (const id of ours) expect(of(id, false).map((m) => m.key)).toEqual([partitionKey(CLUSTER, binding)]);
    // The binding's copy on each of the 3 partitions, unkeyed; the token's on the account's key.
    expect(
      of(binding.auditID, true)
        .map((m) => [m.partition, m.key])
        .sort(),
    ).toEqual([
      [0, null],
      [1, null],
      [2, null],
    ]);
    expect(of(token.auditID, true).map((m) => m.key)).toEqual([
      partitionKey(CLUSTER, { user: { username: 'system:serviceaccount:kube-system:deployer' } }),
    ]);
    expect(of(denied.auditID, true)).toEqual([]);
  });

  it('never lets a planted secret reach the topics or the logs', async () => {
    const secretRef = { resource: 'secrets', namespace: 'default', name: 'db', apiVersion: 'v1' };
    const secret = {
      kind: 'Secret',
      apiVersion: 'v1',
      metadata: {
        name: 'db',
        namespace: 'default',
        annotations: {
          [LAST_APPLIED_ANNOTATION]: JSON.stringify({ data: { k: PLANTED.lastApplied } }),
        },
      },
      data: { password: PLANTED.data },
      stringData: { other: PLANTED.stringData },
    };
    const rr = { level: 'RequestResponse' as const };
    const planted = [
      buildEvent({
        ...rr,
        verb: 'create',
        objectRef: secretRef,
        requestObject: secret,
        responseObject: secret,
      }),
      buildEvent({
        ...rr,
        verb: 'list',
        objectRef: { resource: 'secrets', namespace: 'default' },
        responseObject: { kind: 'SecretList', items: [secret] },
      }),
      buildEvent({
        ...rr,
        verb: 'patch',
        objectRef: secretRef,
        requestObject: [{ op: 'replace', path: '/data/password', value: PLANTED.patch }],
      }),
      buildEvent({
        ...rr,
        verb: 'create',
        requestURI: '/api/v1/namespaces/default/serviceaccounts/builder/token',
        objectRef: {
          resource: 'serviceaccounts',
          subresource: 'token',
          namespace: 'default',
          name: 'builder',
        },
        requestObject: {
          kind: 'TokenRequest',
          apiVersion: 'authentication.k8s.io/v1',
          spec: { audiences: ['api'] },
        },
        responseObject: {
          kind: 'TokenRequest',
          apiVersion: 'authentication.k8s.io/v1',
          status: { token: PLANTED.tokenRequest },
        },
      }),
      buildEvent({
        ...rr,
        verb: 'create',
        requestURI: '/apis/authentication.k8s.io/v1/tokenreviews',
        objectRef: { resource: 'tokenreviews', apiGroup: 'authentication.k8s.io', apiVersion: 'v1' },
        requestObject: {
          kind: 'TokenReview',
          apiVersion: 'authentication.k8s.io/v1',
          spec: { token: PLANTED.tokenReview },
        },
        responseObject: {
          kind: 'TokenReview',
          apiVersion: 'authentication.k8s.io/v1',
          spec: { token: PLANTED.tokenReview },
          status: { authenticated: true },
        },
      }),
    ];
    // Invalid (no verb), so it goes to the dead-letter topic: its raw copy must be redacted too.
    const invalid = {
      ...buildEvent({
        ...rr,
        objectRef: secretRef,
        responseObject: { ...secret, data: { k: PLANTED.deadLetter } },
      }),
      verb: undefined,
    };
    const answer = await post(eventList([...planted, invalid]), { token: TOKEN, tls: { ca: certs.caCert } });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ accepted: planted.length, rejected: 1 });

    const [events, letters] = await Promise.all([readTopic(kafka, eventsTopic), readTopic(kafka, dlqTopic)]);
    const ids = new Set(planted.map((e) => e.auditID));
    const ours = events
      .map((m) => EnvelopeSchema.parse(JSON.parse(m.value)))
      .filter((e) => ids.has(e.event.auditID));
    // Each once, and the TokenRequest's chain-step copy (for builder's partition), redacted like it.
    expect(ours.filter((e) => e.copy === undefined)).toHaveLength(planted.length);
    expect(ours.filter((e) => e.copy !== undefined).map((e) => e.event.objectRef?.name)).toEqual(['builder']);
    for (const { event } of ours) expect(event.annotations?.[REDACTED_ANNOTATION]).toBeTruthy();
    expect(letters.some((m) => DeadLetterSchema.parse(JSON.parse(m.value)).reason.includes('verb'))).toBe(
      true,
    );

    const everything = [...events, ...letters].map((m) => `${m.key} ${m.value}`).join('\n');
    const logs = logLines.join('');
    for (const [where, value] of Object.entries(PLANTED)) {
      expect({ where, inTopics: everything.includes(value) }).toEqual({ where, inTopics: false });
      expect({ where, inLogs: logs.includes(value) }).toEqual({ where, inLogs: false });
    }
  });

  it('delivers the valid part of a mixed batch and dead-letters the rest with the reason and raw item', async () => {
    const good = [buildEvent(), buildEvent()];
    const bad = { ...buildEvent(), requestReceivedTimestamp: 'yesterday' };
    const answer = await post(eventList([good[0], bad, good[1], 'not an event']));
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      accepted: 2,
      rejected: 2,
      errors: [
        { index: 1, reason: expect.stringMatching(/requestReceivedTimestamp/) },
        { index: 3, reason: expect.stringMatching(/\(root\)/) },
      ],
    });
    const [events, letters] = await Promise.all([readTopic(kafka, eventsTopic), readTopic(kafka, dlqTopic)]);
    const auditIDs = new Set(events.map((m) => EnvelopeSchema.parse(JSON.parse(m.value)).event.auditID));
    for (const event of good) expect(auditIDs.has(event.auditID)).toBe(true);
    const letter = letters
      .map((m) => DeadLetterSchema.parse(JSON.parse(m.value)))
      .find((l) => (l.raw as { auditID?: string } | null)?.auditID === bad.auditID);
    expect(letter).toMatchObject({
      source: 'sink',
      cluster: CLUSTER,
      reason: expect.stringMatching(/requestReceivedTimestamp/),
    });
  });

  it('refuses unauthenticated clients and certificates from another CA', async () => {
    const body = eventList([buildEvent()]);
    const noCredentials = await post(body, { tls: { ca: certs.caCert } });
    expect(noCredentials.status).toBe(401);
    const otherCa = await post(body, {
      tls: { ca: certs.caCert, cert: certs.foreign.clientCert, key: certs.foreign.clientKey },
    });
    expect(otherCa.status).toBe(401);
    expect(otherCa.body.error.message).toMatch(/client certificate not accepted/);
    const wrongToken = await post(body, { tls: { ca: certs.caCert }, token: `${TOKEN}-wrong` });
    expect(wrongToken.status).toBe(401);
    // Plain HTTP to the HTTPS port gets no audit endpoint at all.
    await expect(postAudit({ port: sink.port, body: JSON.stringify(body) })).rejects.toThrow();
    // A certificate whose CN maps to a cluster cannot post for another one.
    const otherCluster = await post(body, { path: '/audit/somewhere-else' });
    expect(otherCluster.status).toBe(403);
  });

  it('answers malformed bodies with 400 and the reason', async () => {
    const notJson = await post('{"kind":"EventList","items":[', {});
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toEqual({
      code: 'KAUDIT_ERR_BAD_REQUEST',
      message: expect.stringMatching(/body is not valid JSON/),
    });
    const badList = await post({ kind: 'EventList', items: 'nope' });
    expect(badList.status).toBe(400);
    expect(badList.body.error.message).toMatch(/EventList\.items must be an array/);
    const wrongType = await post('a=b', { contentType: 'text/plain' });
    expect(wrongType.status).toBe(415);
  });

  it('serves health and readiness next to the endpoint, without a client certificate', async () => {
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        httpsRequest(
          {
            host: '127.0.0.1',
            port: sink.port,
            path,
            servername: 'localhost',
            ca: readFileSync(certs.caCert),
            agent: false,
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
          .on('error', reject)
          .end();
      });
    expect(await get('/healthz')).toBe(200);
    expect(await get('/readyz')).toBe(200);
  });
});

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { type Finding, FindingSchema, parseAuditEvent } from '@kaudit/audit-schema';
// test/ is no package: the devstack, the engine and the testkit are imported from their sources.
import { createEngine, latestRevisions, loadPolicyText } from '@kaudit/detection';
import {
  defaultRootDir,
  isolatedRun,
  type Pipeline,
  readTopics,
  SERVICE_NAMES,
  startPipeline,
} from '@kaudit/devstack';
import { type ApiServer, isChainCopy, metricSum, stackEnv, startApiServer, waitFor } from '@kaudit/testkit';
import { Kafka, logLevel } from 'kafkajs';

/**
 * A real kube-apiserver (test/stack/apiserver.sh) sends its audit events over its real webhook backend,
 * with a client certificate, to the sink of the whole pipeline (each service its own process against the
 * real Kafka and Elasticsearch). kubectl, as identities with different RBAC, creates, reads, lists,
 * watches, applies, patches Secrets, is denied, and impersonates a service account. Twice: with the
 * recommended policy (Secrets at Metadata) and with Secrets at RequestResponse, so that the Secret values
 * themselves reach the sink in request and response bodies. Each phase is a cluster of its own
 * (/audit/<cluster>), so each raises its own findings.
 *
 * Every event the API server emitted (its log backend file, written beside the webhook) must be in
 * Elasticsearch exactly once, the expected findings at the Slack stand-in once, and no Secret value in
 * any topic, index or service log.
 */
const root = defaultRootDir;
const missing = [
  ...SERVICE_NAMES.map((name) => `services/${name}/dist/main.js`),
  'packages/es-resources/dist/index.js',
].filter((file) => !existsSync(join(root, file)));

const run = `apisrv${Date.now().toString(36)}${process.pid.toString(36)}`;
const stateDir = join(root, '.kaudit', 'e2e', run);
const { kafkaBrokers, esNode } = stackEnv();
const kafka = new Kafka({ clientId: run, brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
const es = new Client({ node: esNode });

const SERVICE_ACCOUNT = 'system:serviceaccount:team-a:backup-helper';
/** What the traffic below must raise, per cluster (rule identity). */
const EXPECTED = [
  'secret-access-denied-burst bob@example.com', // six denied reads in team-b
  'secret-enumeration alice@example.com', // her first cluster-wide list
  // alice created RoleBinding team-a/secret-readers, then listed Secrets herself: her own chain
  'privilege-escalation-then-secrets alice@example.com',
  // bob's reads and the impersonated account's read are allowed by alice's new RoleBinding (the
  // authorization reason names it): chains across identities, linked on their partitions through the
  // copies of alice's RBAC write the sink puts on every partition (audit-schema chain-copies.ts).
  'privilege-escalation-then-secrets bob@example.com',
  `privilege-escalation-then-secrets ${SERVICE_ACCOUNT}`,
  `secret-new-service-account ${SERVICE_ACCOUNT}`, // carol impersonating it: its first secret read
].sort();

/**
 * The shipped rules and thresholds, but learning over at once and every hour a business hour: the
 * findings then follow from the traffic, not from the wall clock of the run.
 */
const DETECTION_POLICY = `
timezone: UTC
businessHours: { days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00" }
learningPeriod: 1ms
# The API server's own informers list and watch Secrets cluster-wide from its start.
allowList: { identities: ["system:apiserver"] }
eventTime: { allowedLateness: 1s }
# A finding is reported when its window closes (in event time): 1m instead of 10m, so the detector's idle
# flush closes it within a minute of the traffic, not ten. A phase that straddles a minute boundary may
# split one rule's requests into two findings, so the tests compare rule and identity as a set.
grouping: { window: 1m }
`;

interface Phase {
  cluster: string;
  level: 'Metadata' | 'RequestResponse';
  /** Values of the Secrets this phase's kubectl wrote. */
  values: string[];
  /** Every event of its log file, and those written before it was told to stop. */
  events: Array<Record<string, unknown>>;
  beforeStop: Array<Record<string, unknown>>;
  auditLogText: string;
  metrics: { events: number; errors: number };
}

const phases: Phase[] = [];
let pipeline: Pipeline;

/** The shipped audit policy, with Secrets (and ConfigMaps, token reviews) at `level`. */
function auditPolicy(level: Phase['level']): string {
  const text = readFileSync(join(root, 'policies/audit-policy.yaml'), 'utf8');
  if (level === 'Metadata') return join(root, 'policies/audit-policy.yaml');
  const file = join(stateDir, 'audit-policy-requestresponse.yaml');
  // The first rule is the one for Secrets (the first match wins).
  const replaced = text.replace(/^(rules:\n(?:\s*#[^\n]*\n)*\s*- level: )Metadata$/m, `$1${level}`);
  if (replaced === text) throw new Error('the secrets rule of policies/audit-policy.yaml moved');
  writeFileSync(file, replaced);
  return file;
}

async function expectOk(
  api: ApiServer,
  user: Parameters<ApiServer['kubectl']>[0],
  args: string[],
  stdin?: string,
) {
  const result = await api.kubectl(user, args, stdin);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} as ${user}: ${result.stderr}`);
  return result.stdout;
}

function secretManifest(name: string, namespace: string, data: Record<string, string>): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    stringData: data,
  });
}

/** The traffic of one phase: what operators, developers and an intruder do with kubectl. */
async function traffic(api: ApiServer, values: string[]): Promise<void> {
  const [v1, v2, v3, v4, v5] = values as [string, string, string, string, string];
  await expectOk(api, 'alice', ['create', 'namespace', 'team-a']);
  await expectOk(api, 'alice', ['create', 'namespace', 'team-b']);
  await expectOk(api, 'alice', [
    '-n',
    'team-a',
    'create',
    'secret',
    'generic',
    'db-password',
    `--from-literal=password=${v1}`,
  ]);
  await expectOk(api, 'alice', [
    '-n',
    'team-b',
    'create',
    'secret',
    'generic',
    'api-key',
    `--from-literal=key=${v2}`,
  ]);
  // apply twice: the second is a patch that carries the last-applied configuration (with the value).
  await expectOk(api, 'alice', ['apply', '-f', '-'], secretManifest('app-config', 'team-a', { token: v3 }));
  await expectOk(api, 'alice', ['apply', '-f', '-'], secretManifest('app-config', 'team-a', { token: v4 }));
  await expectOk(api, 'alice', [
    '-n',
    'team-a',
    'patch',
    'secret',
    'db-password',
    '--type=merge',
    '-p',
    JSON.stringify({ stringData: { password: v5 } }),
  ]);
  await expectOk(api, 'alice', [
    '-n',
    'team-a',
    'create',
    'rolebinding',
    'secret-readers',
    '--clusterrole=kaudit-stack:secret-reader',
    '--user=bob@example.com',
    '--serviceaccount=team-a:backup-helper',
  ]);

  await expectOk(api, 'bob', ['-n', 'team-a', 'get', 'secret', 'db-password', '-o', 'name']);
  await expectOk(api, 'bob', ['-n', 'team-a', 'get', 'secrets', '-o', 'name']);
  await expectOk(api, 'bob', [
    'get',
    '--raw',
    '/api/v1/namespaces/team-a/secrets?watch=true&timeoutSeconds=1',
  ]);
  for (let i = 0; i < 6; i += 1) {
    const denied = await api.kubectl('bob', ['-n', 'team-b', 'get', 'secret', `api-key-${i}`, '-o', 'name']);
    expect({ code: denied.code, forbidden: denied.stderr.includes('Forbidden') }).toEqual({
      code: 1,
      forbidden: true,
    });
  }
  // What an intruder with a service account's token does first: what may it do? Also the detector's first
  // event of this cluster in the Kafka partition of that identity, which starts the partition's (here 1 ms)
  // learning period; without it the secret read itself would be that first event, inside learning.
  await expectOk(api, 'carol', ['auth', 'can-i', '--list', '-n', 'team-a', `--as=${SERVICE_ACCOUNT}`]);
  const asServiceAccount = await api.kubectl('carol', [
    '-n',
    'team-a',
    'get',
    'secret',
    'db-password',
    '-o',
    'name',
    `--as=${SERVICE_ACCOUNT}`,
  ]);
  expect(asServiceAccount).toMatchObject({ code: 0, stdout: 'secret/db-password\n' });
  const carolHerself = await api.kubectl('carol', [
    '-n',
    'team-a',
    'get',
    'secret',
    'db-password',
    '-o',
    'name',
  ]);
  expect(carolHerself.code).toBe(1);
  await expectOk(api, 'alice', ['get', 'secrets', '--all-namespaces', '-o', 'name']);
}

async function runPhase(level: Phase['level']): Promise<void> {
  const cluster = `${run}-${level === 'Metadata' ? 'metadata' : 'rr'}`;
  const values = Array.from(
    { length: 5 },
    (_, i) => `kaudit-planted-${level}-${i}-${randomBytes(9).toString('hex')}`,
  );
  const api = await startApiServer({
    dir: join(stateDir, cluster),
    sinkUrl: `${pipeline.urls.sink}/${cluster}`,
    caFile: pipeline.certs.caCert,
    clientCertFile: pipeline.certs.clientCert,
    clientKeyFile: pipeline.certs.clientKey,
    auditPolicyFile: auditPolicy(level),
  });
  let metrics: Phase['metrics'];
  let beforeStop: Phase['beforeStop'];
  try {
    await traffic(api, values);
    beforeStop = api.auditEvents();
    const text = await api.metrics();
    metrics = {
      events: metricSum(text, 'apiserver_audit_event_total'),
      errors: metricSum(text, 'apiserver_audit_error_total'),
    };
  } finally {
    // A graceful stop flushes the webhook's last batch; the log file is complete after it.
    await api.stop();
  }
  const auditLogText = readFileSync(api.auditLog, 'utf8');
  const events = api.auditEvents();
  phases.push({ cluster, level, values, events, beforeStop, auditLogText, metrics });
}

beforeAll(async () => {
  if (missing.length > 0) throw new Error(`run pnpm build first (missing ${missing.join(', ')})`);
  mkdirSync(stateDir, { recursive: true });
  const policyFile = join(stateDir, 'detection.yaml');
  // On a busy machine a topic a service has just created can be unknown to the metadata it reads right
  // after (the alerter then exits at start): the shared topics and the alerter's are made here first.
  const topics = [`${run}.events`, `${run}.alerts`, `${run}.dlq`];
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        ...topics.map((topic) => ({ topic, numPartitions: 3 })),
        {
          topic: `${run}.alerter-delivered`,
          numPartitions: 3,
          configEntries: [{ name: 'cleanup.policy', value: 'compact,delete' }],
        },
      ],
    });
    for (const topic of [...topics, `${run}.alerter-delivered`]) {
      await waitFor(`${topic} in the metadata`, async () =>
        (await admin.fetchTopicOffsets(topic)).length > 0 ? true : undefined,
      );
    }
  } finally {
    await admin.disconnect();
  }
  pipeline = await startPipeline({
    stateDir,
    ...isolatedRun(run),
    clusterName: 'unnamed',
    startStack: false,
    addresses: { kafkaBrokers, esNode },
    detectionPolicyFile: (() => {
      writeFileSync(policyFile, DETECTION_POLICY);
      return policyFile;
    })(),
    serviceEnv: { detector: { DETECTOR_IDLE_FLUSH: '2s' }, indexer: { INDEXER_FLUSH_INTERVAL_MS: '200' } },
    log: () => {},
  });
  await runPhase('Metadata');
  await runPhase('RequestResponse');
}, 600_000);

afterAll(async () => {
  await pipeline?.stop();
  await es.close();
}, 60_000);

async function allDocuments(index: string): Promise<Array<Record<string, unknown>>> {
  await es.indices.refresh({ index });
  const result = await es.search<Record<string, unknown>>({
    index,
    size: 10_000,
    query: { match_all: {} },
    sort: ['_doc'],
  });
  return result.hits.hits.map((hit) => hit._source ?? {});
}

async function count(index: string): Promise<number> {
  try {
    return (await es.count({ index })).count;
  } catch {
    return 0;
  }
}

/** Every revision on the alerts topic (a finding is reported early and updated by id: ADR 0010). */
async function reportsOnTopic(): Promise<Finding[]> {
  const messages = await readTopics(kafka, [pipeline.topics.alerts], {
    groupId: `${run}-reader-${Date.now()}`,
  });
  return messages.map((message) => FindingSchema.parse(JSON.parse(String(message.value))));
}

/** The findings as they are now: the highest revision of each id. */
async function findingsOnTopic(): Promise<Finding[]> {
  return latestRevisions(await reportsOnTopic());
}

const allEvents = () => phases.flatMap((phase) => phase.events);
const eventKey = (event: { auditID?: unknown; stage?: unknown }) =>
  `${String(event.auditID)}/${String(event.stage)}`;
const findingKey = (finding: Pick<Finding, 'rule' | 'identity'>) =>
  `${finding.rule} ${finding.identity.username}`;

describe('e2e > real kube-apiserver', () => {
  it('(a) the API server emitted events over its webhook without an error, as its metrics count them', () => {
    expect(phases.map((p) => p.level)).toEqual(['Metadata', 'RequestResponse']);
    for (const phase of phases) {
      expect(phase.events.length).toBeGreaterThan(50);
      expect(phase.metrics.errors).toBe(0);
      // Two backends (log and webhook) count each event once each; the metric is read before the last requests.
      expect(phase.metrics.events).toBeGreaterThan(0);
      expect(
        phase.events.some(
          (e) => e.level === phase.level && (e.objectRef as { resource?: string })?.resource === 'secrets',
        ),
      ).toBe(true);
    }
  });

  it('(b) stores every event the API server emitted in Elasticsearch exactly once', async () => {
    const emitted = phases.flatMap((phase) => phase.beforeStop).map(eventKey);
    const index = pipeline.dataStreams.events;
    await waitFor(
      'every event in Elasticsearch',
      async () => ((await count(index)) >= emitted.length ? true : undefined),
      120_000,
    );
    const documents = await allDocuments(index);
    const stored = documents.map((doc) =>
      eventKey((doc.kubernetes as { audit: { auditID: string; stage: string } }).audit),
    );
    expect(new Set(stored).size).toBe(stored.length);
    const storedSet = new Set(stored);
    expect(emitted.filter((key) => !storedSet.has(key))).toEqual([]);
    // Nothing the API server did not log; what it logged only while shutting down may be missing: its own
    // informers' watches ending after the webhook backend stopped (the log backend still writes them).
    const logged = new Map(allEvents().map((event) => [eventKey(event), event]));
    expect(stored.filter((key) => !logged.has(key))).toEqual([]);
    const lost = [...logged.entries()].filter(([key]) => !storedSet.has(key)).map(([, event]) => event);
    expect(
      lost.filter(
        (e) => (e.user as { username: string }).username !== 'system:apiserver' || e.verb !== 'watch',
      ),
    ).toEqual([]);
  }, 180_000);

  it('(c) raises the expected findings per cluster, the same the offline engine finds in the log file', async () => {
    const expectedCount = EXPECTED.length * phases.length;
    const distinct = (list: Finding[]) => [...new Set(list.map(findingKey))].sort();
    const findings = await waitFor(
      'the findings on the alerts topic',
      async () => {
        const onTopic = await findingsOnTopic();
        const perCluster = phases.map((p) => distinct(onTopic.filter((f) => f.cluster === p.cluster)).length);
        return perCluster.reduce((a, b) => a + b, 0) >= expectedCount ? onTopic : undefined;
      },
      150_000,
    );
    expect(new Set(findings.map((f) => f.id)).size).toBe(findings.length);
    const reports = await reportsOnTopic();
    for (const phase of phases) {
      const mine = findings.filter((f) => f.cluster === phase.cluster);
      expect({ cluster: phase.cluster, findings: distinct(mine) }).toEqual({
        cluster: phase.cluster,
        findings: EXPECTED,
      });
      // Its first read and its chain (alice's binding authorized it), both naming carol.
      const impersonated = mine.filter((f) => f.identity.username === SERVICE_ACCOUNT);
      expect(impersonated.map((f) => f.identity.impersonator)).toEqual([
        'carol@example.com',
        'carol@example.com',
      ]);

      // One engine over the whole log (kaudit detect) finds the same ids, the chains across identities
      // included, though the detector's engines each see one partition.
      const engine = createEngine({ policy: loadPolicyText(DETECTION_POLICY) });
      const offline: Finding[] = [];
      for (const raw of phase.events) {
        const parsed = parseAuditEvent(raw);
        if (!parsed.ok) continue;
        offline.push(...engine.process({ cluster: phase.cluster, event: parsed.event }));
      }
      offline.push(...engine.flush());
      const ids = (list: Finding[]) => [...new Set(list.map((f) => f.id))].sort();
      expect(ids(mine)).toEqual(ids(offline));
      expect(distinct(offline)).toEqual(EXPECTED);
      // Every revision the service made holds only what the offline run's last revision of that id holds.
      // Where a revision ends is the detector's wall clock (its idle flush drains a quiet partition), so
      // bob's get and his list 80 ms later may be one revision offline and two in the service; the
      // service's windows still open at the end have not had their last revision yet.
      const last = new Map(latestRevisions(offline).map((f) => [f.id, new Set(f.auditIDs)]));
      for (const report of reports.filter((f) => f.cluster === phase.cluster)) {
        const offlineIDs = last.get(report.id) ?? new Set<string>();
        expect({ id: report.id, extra: report.auditIDs.filter((id) => !offlineIDs.has(id)) }).toEqual({
          id: report.id,
          extra: [],
        });
      }
    }
  }, 200_000);

  it('(d) delivers each finding to the Slack stand-in once', async () => {
    const findings = await findingsOnTopic();
    await pipeline.slack.waitForMessages(findings.length, 60_000);
    // Anything more (a repeat, a digest) would arrive right behind them.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const messages = pipeline.slack.messages.map((message) => JSON.stringify(message.body));
    expect(messages).toHaveLength(findings.length);
    for (const finding of findings) {
      const matching = messages.filter((text) => text.includes(finding.id) && text.includes(finding.title));
      expect({ finding: findingKey(finding), messages: matching.length }).toEqual({
        finding: findingKey(finding),
        messages: 1,
      });
    }
    // The alert names who acted as the service account.
    const impersonated = findings.filter((f) => f.identity.username === SERVICE_ACCOUNT);
    expect(impersonated).toHaveLength(2 * phases.length); // its first read, its chain
    for (const finding of impersonated) {
      const text = messages.find((m) => m.includes(finding.id)) ?? '';
      expect(text).toContain('impersonated by');
      expect(text).toContain('carol@example.com');
    }
  }, 90_000);

  it('(e) lets no Secret value reach Kafka, Elasticsearch or any service log, even at RequestResponse', async () => {
    // Each value as written and as the API server encodes it in Secret data.
    const values = phases.flatMap((phase) =>
      phase.values.flatMap((v) => [v, Buffer.from(v).toString('base64')]),
    );
    const metadata = phases.find((p) => p.level === 'Metadata');
    const requestResponse = phases.find((p) => p.level === 'RequestResponse');
    // The recommended policy keeps them out of the API server's own log; the misconfigured one does not:
    // there, the values did reach the sink (in request and response bodies, last-applied annotations).
    expect(
      metadata?.values.filter(
        (v) =>
          metadata.auditLogText.includes(v) ||
          metadata.auditLogText.includes(Buffer.from(v).toString('base64')),
      ),
    ).toEqual([]);
    expect(
      requestResponse?.values.filter(
        (v) =>
          !requestResponse.auditLogText.includes(v) &&
          !requestResponse.auditLogText.includes(Buffer.from(v).toString('base64')),
      ),
    ).toEqual([]);

    const messages = await readTopics(kafka, Object.values(pipeline.topics), { groupId: `${run}-scan` });
    // Every original is indexed; chain-step copies (RBAC writes on each partition) are not.
    const onEvents = messages.filter((m) => m.topic === pipeline.topics.events);
    expect(onEvents.filter((m) => !isChainCopy(m.value))).toHaveLength(
      await count(pipeline.dataStreams.events),
    );
    expect(onEvents.filter((m) => isChainCopy(m.value)).length).toBeGreaterThan(0);
    const inKafka = messages
      .map((m) => `${m.key?.toString('utf8') ?? ''} ${m.value?.toString('utf8') ?? ''}`)
      .join('\n');
    const inElasticsearch = JSON.stringify([
      ...(await allDocuments(pipeline.dataStreams.events)),
      ...(await allDocuments(pipeline.dataStreams.findings)),
    ]);
    expect(inElasticsearch).toContain('db-password'); // the scan sees the Secret events themselves
    expect(values.filter((v) => inKafka.includes(v))).toEqual([]);
    expect(values.filter((v) => inElasticsearch.includes(v))).toEqual([]);
    expect(messages.filter((m) => m.topic === pipeline.topics.dlq)).toEqual([]);

    const logs = readdirSync(pipeline.logsDir).filter((name) => name.endsWith('.log'));
    expect(SERVICE_NAMES.map((name) => `${name}.log`).filter((name) => !logs.includes(name))).toEqual([]);
    for (const name of logs) {
      const text = readFileSync(join(pipeline.logsDir, name), 'utf8');
      expect({ log: name, leaked: values.filter((v) => text.includes(v)) }).toEqual({
        log: name,
        leaked: [],
      });
    }
  });
});

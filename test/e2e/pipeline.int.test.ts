import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import {
  chainCopies,
  decodeAuditText,
  type Envelope,
  type Finding,
  FindingSchema,
  parseAuditEvent,
  REDACTED_ANNOTATION,
} from '@kaudit/audit-schema';
// test/ is no package: the devstack, the send command and the engine are imported from their sources.
import { sendItems } from '@kaudit/cli';
import { createEngine, latestRevisions, loadPolicyText } from '@kaudit/detection';
import {
  defaultRootDir,
  isolatedRun,
  type Pipeline,
  readTopics,
  SERVICE_NAMES,
  startPipeline,
} from '@kaudit/devstack';
import { isChainCopy, stackEnv, waitFor } from '@kaudit/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { plantedSecrets } from './planted-secrets';

/**
 * The whole pipeline, each service its own process (node services/<name>/dist/main.js) against the real
 * Kafka and Elasticsearch: the example week plus planted secret-bearing events go in over HTTPS with a
 * client certificate, the way an API server sends them; the intrusion's findings must come out on the
 * alerts topic, in Elasticsearch and in the Slack stand-in, each once, and no secret value anywhere:
 * not in Kafka, not in Elasticsearch, not in any service's log.
 */
const root = defaultRootDir;
const missing = [
  ...SERVICE_NAMES.map((name) => `services/${name}/dist/main.js`),
  'packages/es-resources/dist/index.js',
].filter((file) => !existsSync(join(root, file)));

const run = `e2e${Date.now().toString(36)}${process.pid.toString(36)}`;
const runsDir = join(root, '.kaudit', 'e2e');
/** Certificates, spool, routing and the services' logs of this run (kept for a look after a failure). */
const stateDir = join(runsDir, run);
const { kafkaBrokers, esNode } = stackEnv();
const kafka = new Kafka({ clientId: run, brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
const es = new Client({ node: esNode });

const ALICE = 'alice@example.com';
const HELPER = 'system:serviceaccount:default:backup-helper';
/** The intrusion in examples/audit-week.jsonl, and nothing else, as the pipeline finds it (examples/README.md). */
const EXPECTED = [
  ['credential-minted', ALICE],
  // alice's ClusterRoleBinding and TokenRequest, then backup-helper's reads: a chain across two
  // identities on two partitions ('e2e/alice...' goes to partition 2 of 3, 'e2e/...backup-helper' to 1),
  // linked through the copies of alice's steps the sink puts on backup-helper's partition.
  ['privilege-escalation-then-secrets', HELPER], // the list, window 02:40-02:50
  ['privilege-escalation-then-secrets', HELPER], // the gets, window 02:50-03:00
  ['secret-canary-read', HELPER], // the cluster-wide list returns the canary (02:49, window 02:40-02:50)
  ['secret-canary-read', HELPER], // the get of the canary itself (02:50, the next window)
  ['secret-enumeration', HELPER],
  ['secret-new-service-account', HELPER],
  ['secret-new-source-ip', ALICE],
  ['secret-off-hours', ALICE],
].map(([rule, identity]) => `${rule} ${identity}`);

const planted = plantedSecrets();
let pipeline: Pipeline;
let sent: Array<Record<string, unknown>>;

/** Example traffic with the planted events merged in at their time, as one API server would log them. */
function traffic(): Array<Record<string, unknown>> {
  const example = decodeAuditText(readFileSync(join(root, 'examples/audit-week.jsonl'), 'utf8')).flatMap(
    (item) => (item.ok ? [item.raw as Record<string, unknown>] : []),
  );
  const time = (event: Record<string, unknown>) => Date.parse(String(event.stageTimestamp));
  return [...example, ...planted.events].sort((a, b) => time(a) - time(b));
}

const key = (finding: Pick<Finding, 'rule' | 'identity'>) => `${finding.rule} ${finding.identity.username}`;

/** Runs older than an hour: their logs are no longer anyone's evidence. */
function removeOldRuns(): void {
  if (!existsSync(runsDir)) return;
  for (const name of readdirSync(runsDir)) {
    const dir = join(runsDir, name);
    if (Date.now() - statSync(dir).mtimeMs > 3_600_000) rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  if (missing.length > 0) throw new Error(`run pnpm build first (missing ${missing.join(', ')})`);
  removeOldRuns();
  pipeline = await startPipeline({
    stateDir,
    ...isolatedRun(run),
    clusterName: 'e2e',
    startStack: false,
    addresses: { kafkaBrokers, esNode },
    // Close finding windows soon after the traffic stops instead of 30 s later.
    serviceEnv: { detector: { DETECTOR_IDLE_FLUSH: '2s' }, indexer: { INDEXER_FLUSH_INTERVAL_MS: '200' } },
    log: () => {},
  });
  sent = traffic();
  const summary = await sendItems(sent, {
    url: pipeline.urls.sink,
    cert: readFileSync(pipeline.certs.clientCert),
    key: readFileSync(pipeline.certs.clientKey),
    ca: readFileSync(pipeline.certs.caCert),
    retry: { initialDelayMs: 200 },
  });
  expect(summary).toMatchObject({ sent: sent.length, accepted: sent.length, rejected: 0 });
}, 180_000);

afterAll(async () => {
  await pipeline?.stop();
  await es.close();
}, 60_000);

async function allDocuments(
  index: string,
): Promise<Array<{ _id: string; _source: Record<string, unknown> }>> {
  await es.indices.refresh({ index });
  const result = await es.search<Record<string, unknown>>({
    index,
    size: 10_000,
    query: { match_all: {} },
    sort: ['_doc'],
  });
  return result.hits.hits.map((hit) => ({ _id: hit._id ?? '', _source: hit._source ?? {} }));
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

describe('e2e > pipeline', () => {
  it('(a) stores every event sent in Elasticsearch exactly once', async () => {
    const index = pipeline.dataStreams.events;
    await waitFor(
      'every event in Elasticsearch',
      async () => ((await count(index)) >= sent.length ? true : undefined),
      90_000,
    );
    const documents = await allDocuments(index);
    expect(documents).toHaveLength(sent.length);
    const stored = documents.map((doc) => {
      const audit = (doc._source.kubernetes as { audit: { auditID: string; stage: string } }).audit;
      return `${audit.auditID}/${audit.stage}`;
    });
    const expected = sent.map((event) => `${event.auditID}/${event.stage}`);
    expect(new Set(stored).size).toBe(stored.length);
    expect(stored.sort()).toEqual(expected.sort());
  });

  it('(b) puts the findings of the intrusion, and only those, on the alerts topic and in Elasticsearch', async () => {
    const findings = await waitFor(
      'the intrusion findings on the alerts topic',
      async () => {
        const onTopic = await findingsOnTopic();
        return onTopic.length >= EXPECTED.length ? onTopic : undefined;
      },
      90_000,
    );
    expect(findings.map(key).sort()).toEqual(EXPECTED);
    expect(new Set(findings.map((f) => f.id)).size).toBe(findings.length);
    expect(findings.every((f) => f.cluster === 'e2e')).toBe(true);

    // The service finds what one engine over the same traffic finds (kaudit detect): same ids, same
    // events, though its engines each see one partition.
    const policy = loadPolicyText(readFileSync(join(root, 'policies/detection.yaml'), 'utf8'));
    const engine = createEngine({ policy });
    const offline: Finding[] = [];
    for (const raw of sent) {
      const parsed = parseAuditEvent(raw);
      if (!parsed.ok) continue;
      offline.push(...engine.process({ cluster: 'e2e', event: parsed.event }));
    }
    offline.push(...engine.flush());
    const ids = (list: Finding[]) => [...new Set(list.map((f) => f.id))].sort();
    expect(ids(findings)).toEqual(ids(offline));
    expect(latestRevisions(offline).map(key).sort()).toEqual(EXPECTED);
    // Every revision the service made is one the offline run made too (the service's windows still
    // open at the end have not had their last revision yet; offline, the end of input closes them).
    const summary = (f: Finding) => ({ id: f.id, rev: f.revision, auditIDs: [...f.auditIDs].sort() });
    const offlineRevisions = offline.map(summary);
    for (const report of (await reportsOnTopic()).map(summary))
      expect(offlineRevisions).toContainEqual(report);

    const index = pipeline.dataStreams.findings;
    await waitFor(
      'the findings in Elasticsearch',
      async () => ((await count(index)) >= findings.length ? true : undefined),
      60_000,
    );
    const documents = await allDocuments(index);
    expect(documents.map((doc) => (doc._source.event as { id: string }).id).sort()).toEqual(
      findings.map((f) => f.id).sort(),
    );
  });

  it('(c) delivers each finding to the Slack stand-in once', async () => {
    const findings = await findingsOnTopic();
    await pipeline.slack.waitForMessages(findings.length, 60_000);
    // Anything more (a repeat, a digest) would arrive right behind them.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const messages = pipeline.slack.messages.map((message) => JSON.stringify(message.body));
    expect(messages).toHaveLength(findings.length);
    // Two findings may share rule and identity (two windows of the canary): one message per finding.
    for (const finding of findings) {
      const matching = messages.filter(
        (text) => text.includes(finding.identity.username) && text.includes(finding.title),
      );
      const same = findings.filter((other) => key(other) === key(finding)).length;
      expect({ finding: key(finding), messages: matching.length }).toEqual({
        finding: key(finding),
        messages: same,
      });
    }
  });

  it('(d) lets no planted secret value reach Kafka or Elasticsearch', async () => {
    expect(planted.values.length).toBeGreaterThanOrEqual(10);
    const topics = Object.values(pipeline.topics);
    const messages = await readTopics(kafka, topics, { groupId: `${run}-scan` });
    // Each sent event once; besides, alice's ClusterRoleBinding copied to every partition and her
    // TokenRequest to backup-helper's (chain-step copies, audit-schema chain-copies.ts).
    const onEvents = messages.filter((m) => m.topic === pipeline.topics.events);
    const events = onEvents.filter((m) => !isChainCopy(m.value));
    expect(events).toHaveLength(sent.length);
    const admin = kafka.admin();
    await admin.connect();
    const [meta] = (await admin.fetchTopicMetadata({ topics: [pipeline.topics.events] })).topics;
    await admin.disconnect();
    const copies = sent.reduce((total, raw) => {
      const parsed = parseAuditEvent(raw);
      if (!parsed.ok) return total;
      const { keys, everyPartition } = chainCopies('e2e', parsed.event);
      return total + keys.length + (everyPartition ? meta!.partitions.length : 0);
    }, 0);
    expect(copies).toBeGreaterThanOrEqual(2);
    expect(onEvents.length - events.length).toBe(copies);
    // The planted events did arrive, and the sink marked them redacted.
    const plantedIds = new Set(planted.events.map((event) => String(event.auditID)));
    const arrived = events
      .map((m) => (JSON.parse(String(m.value)) as Envelope).event)
      .filter((event) => plantedIds.has(event.auditID));
    expect(arrived).toHaveLength(planted.events.length);
    expect(
      arrived.filter((event) => !event.annotations?.[REDACTED_ANNOTATION]).map((e) => e.auditID),
    ).toEqual([]);

    const inKafka = messages
      .map((m) => `${m.key?.toString('utf8') ?? ''} ${m.value?.toString('utf8') ?? ''}`)
      .join('\n');
    const documents = [
      ...(await allDocuments(pipeline.dataStreams.events)),
      ...(await allDocuments(pipeline.dataStreams.findings)),
    ];
    const inElasticsearch = JSON.stringify(documents);
    expect(inElasticsearch).toContain('e2e00000-'); // the scan sees the planted events themselves
    expect(planted.values.filter((value) => inKafka.includes(value))).toEqual([]);
    expect(planted.values.filter((value) => inElasticsearch.includes(value))).toEqual([]);
    // The DLQ stayed empty: nothing was rejected on the way.
    expect(messages.filter((m) => m.topic === pipeline.topics.dlq)).toEqual([]);
  });

  it("(e) lets no planted secret value reach any service's log (or the Slack stand-in's)", () => {
    const logs = readdirSync(pipeline.logsDir).filter((name) => name.endsWith('.log'));
    // Every service wrote its log here, and the scan reads each one of them.
    expect(SERVICE_NAMES.map((name) => `${name}.log`).filter((name) => !logs.includes(name))).toEqual([]);
    for (const name of logs) {
      const text = readFileSync(join(pipeline.logsDir, name), 'utf8');
      if (SERVICE_NAMES.some((service) => name === `${service}.log`)) expect(text.length).toBeGreaterThan(0);
      expect({ log: name, leaked: planted.values.filter((value) => text.includes(value)) }).toEqual({
        log: name,
        leaked: [],
      });
    }
  });
});

import type { Client } from '@elastic/elasticsearch';
import { type AuditEvent, type DeadLetter, DeadLetterSchema, type Envelope } from '@kaudit/audit-schema';
import { dataStreamExists, dataStreamNames } from '@kaudit/es-resources';
import { buildEvent, loadSampleEvents, stackEnv, waitFor } from '@kaudit/testkit';
import type { Kafka, Producer } from 'kafkajs';
import {
  countDocs,
  createTopics,
  esClient,
  produceEnvelopes,
  stackKafka,
  startCuttableProxy,
  startTestIndexer,
  type TestNames,
  testNames,
  waitForCommitted,
} from '../test/stack';
import type { IndexerService } from './service';

const envelope = (event: AuditEvent, cluster = 'it'): Envelope => ({
  cluster,
  receivedAt: '2026-01-05T10:00:00.000Z',
  event,
});

jest.setTimeout(180_000);

describe('indexer > real Kafka and Elasticsearch', () => {
  let kafka: Kafka;
  let producer: Producer;
  let es: Client;
  const running: IndexerService[] = [];

  beforeAll(async () => {
    kafka = stackKafka();
    producer = kafka.producer();
    await producer.connect();
    es = esClient();
  });
  afterEach(async () => {
    while (running.length > 0) await running.pop()!.stop();
  });
  afterAll(async () => {
    await producer.disconnect();
    await es.close();
  });

  async function start(prefix: string, env: Record<string, string> = {}) {
    const names = testNames(prefix);
    await createTopics(kafka, names);
    const service = await startTestIndexer(names, env);
    running.push(service);
    return { names, service, streams: dataStreamNames(names.namespace) };
  }

  it('creates templates and data streams at start-up, with source.ip an ip and @timestamp a date', async () => {
    const { names, streams } = await start('ix-startup');
    expect(await dataStreamExists(es, streams.events)).toBe(true);
    expect(await dataStreamExists(es, streams.findings)).toBe(true);
    const templates = await es.indices.getIndexTemplate({ name: 'logs-k*' });
    expect(templates.index_templates.map((t) => t.name).sort()).toEqual([
      'logs-kaudit.audit',
      'logs-kaudit.findings',
      'logs-kubernetes.audit_logs-kaudit',
    ]);
    expect(streams.events).toBe(`logs-kubernetes.audit_logs-kaudit_${names.namespace}`);
    const mapping = await es.indices.getFieldMapping({
      index: streams.events,
      fields: ['source.ip', '@timestamp'],
    });
    const fields = Object.values(mapping)[0]!.mappings as Record<
      string,
      { mapping: Record<string, { type: string }> }
    >;
    expect(fields['source.ip']!.mapping.ip!.type).toBe('ip');
    expect(fields['@timestamp']!.mapping['@timestamp']!.type).toBe('date');
  });

  it('makes real audit events searchable by user, verb, resource, namespace and IP', async () => {
    const { names, streams } = await start('ix-search');
    const events = [
      ...loadSampleEvents('openshift/ocp-4.12-audit.jsonl'),
      ...loadSampleEvents('audit2rbac/demo-v1beta1.jsonl'),
    ];
    await produceEnvelopes(
      producer,
      names.events,
      events.map((event) => envelope(event)),
    );
    await waitForCommitted(kafka, names.group, names.events);
    const distinct = new Set(events.map((event) => JSON.stringify(event))).size;
    expect(await countDocs(es, streams.events)).toBe(distinct);

    const sample = events.find((e) => e.objectRef?.namespace && e.objectRef.resource && e.sourceIPs?.length)!;
    const expected = (predicate: (e: AuditEvent) => boolean) =>
      new Set(events.filter(predicate).map((e) => JSON.stringify(e))).size;
    const trustedIp = sample.sourceIPs!.at(-1)!;
    const cases: Array<[object, number]> = [
      [
        { term: { 'user.name': sample.user.username } },
        expected((e) => e.user.username === sample.user.username),
      ],
      [{ term: { 'event.action': sample.verb } }, expected((e) => e.verb === sample.verb)],
      [
        { term: { 'orchestrator.resource.type': sample.objectRef!.resource } },
        expected((e) => e.objectRef?.resource === sample.objectRef!.resource),
      ],
      [
        { term: { 'orchestrator.namespace': sample.objectRef!.namespace } },
        expected((e) => e.objectRef?.namespace === sample.objectRef!.namespace),
      ],
      [{ term: { 'source.ip': trustedIp } }, expected((e) => e.sourceIPs?.at(-1) === trustedIp)],
    ];
    for (const [query, count] of cases) {
      expect({ query, count: await countDocs(es, streams.events, query) }).toEqual({ query, count });
      expect(count).toBeGreaterThan(0);
    }
    // An ip field answers CIDR queries too: the reason source.ip is mapped as ip.
    const v4 = events.filter((e) => /^\d+\.\d+\.\d+\.\d+$/.test(e.sourceIPs?.at(-1) ?? ''));
    if (v4.length > 0) {
      const first = v4[0]!.sourceIPs!.at(-1)!;
      const cidr = `${first.split('.').slice(0, 2).join('.')}.0.0/16`;
      expect(await countDocs(es, streams.events, { term: { 'source.ip': cidr } })).toBeGreaterThan(0);
    }
  });

  it('stores a re-delivered batch once, and a forged duplicate auditID as its own document', async () => {
    const { names, streams } = await start('ix-dedup');
    const events = Array.from({ length: 50 }, (_, i) =>
      buildEvent({ requestReceivedTimestamp: `2026-01-05T10:00:${String(i).padStart(2, '0')}.000000Z` }),
    );
    const forged = { ...events[0]!, user: { username: 'mallory' }, sourceIPs: ['198.51.100.66'] };
    const batch = events.map((event) => envelope(event));
    await produceEnvelopes(producer, names.events, batch);
    await produceEnvelopes(producer, names.events, [...batch, envelope(forged)]);
    await waitForCommitted(kafka, names.group, names.events);
    expect(await countDocs(es, streams.events)).toBe(51);
    const byAuditId = { term: { 'kubernetes.audit.auditID': events[0]!.auditID } };
    const stored = await es.search<{ user: { name: string } }>({ index: streams.events, query: byAuditId });
    expect(stored.hits.hits.map((hit) => hit._source!.user.name).sort()).toEqual([
      'alice@example.com',
      'mallory',
    ]);
  });

  it('indexes findings once each under their own id', async () => {
    const { names, streams } = await start('ix-findings');
    const finding = {
      id: 'secret-anonymous-access:it:system:anonymous:2026-01-05T10',
      rule: 'secret-anonymous-access',
      severity: 'critical',
      title: 'Anonymous request for secrets',
      summary: 'system:anonymous listed secrets in kube-system from 198.51.100.9 (denied).',
      cluster: 'it',
      identity: { username: 'system:anonymous', kind: 'anonymous', groups: ['system:unauthenticated'] },
      sourceIP: '198.51.100.9',
      verbs: ['list'],
      objects: [{ namespace: 'kube-system' }],
      firstSeen: '2026-01-05T10:00:00.000000Z',
      lastSeen: '2026-01-05T10:00:00.000000Z',
      auditIDs: ['a-1'],
      count: 1,
      mitre: ['T1552.007'],
    };
    const message = { key: 'it/system:anonymous', value: JSON.stringify(finding) };
    await producer.send({ topic: names.alerts, messages: [message, message] });
    await waitForCommitted(kafka, names.group, names.alerts);
    expect(await countDocs(es, streams.findings)).toBe(1);
    const hit = await es
      .get<Record<string, unknown>>({ index: streams.findings, id: finding.id })
      .catch(() => undefined);
    // get by id on a data stream needs the backing index; search instead when it is refused.
    const found = hit?._source ?? (await es.search({ index: streams.findings })).hits.hits[0]!._source;
    expect(found).toMatchObject({ rule: { id: 'secret-anonymous-access' }, event: { severity: 4 } });
  });

  it('updates a finding in place by id: the highest revision is stored, once, whatever the order', async () => {
    const { names, streams } = await start('ix-finding-revisions');
    const revision = (n: number, count: number) => ({
      id: 'f0e1d2c3b4a5968778695a4b3c2d1e0f',
      rule: 'secret-enumeration',
      severity: 'high',
      title: 'Secret enumeration',
      summary: `mallory read ${count} secrets.`,
      cluster: 'it',
      identity: { username: 'mallory', kind: 'user', groups: ['dev'] },
      verbs: ['get'],
      objects: Array.from({ length: count }, (_, i) => ({ namespace: 'prod', name: `s${i}` })),
      firstSeen: '2026-01-05T10:00:00.000Z',
      lastSeen: `2026-01-05T10:0${count % 10}:00.000Z`,
      auditIDs: Array.from({ length: count }, (_, i) => `a-${i}`),
      count,
      mitre: ['T1552.007'],
      revision: n,
    });
    const send = (...findings: unknown[]) =>
      producer.send({
        topic: names.alerts,
        messages: findings.map((f) => ({
          key: 'f0e1d2c3b4a5968778695a4b3c2d1e0f',
          value: JSON.stringify(f),
        })),
      });
    const stored = async () => {
      await es.indices.refresh({ index: streams.findings });
      const hits = (
        await es.search<{ kaudit: { finding: { count: number; revision: number } } }>({
          index: streams.findings,
        })
      ).hits.hits;
      return hits.map((h) => h._source!.kaudit.finding);
    };
    await send(revision(1, 1));
    await waitForCommitted(kafka, names.group, names.alerts);
    // A later revision alone in its batch, then one batch with an older and a newer one.
    await send(revision(2, 4));
    await waitForCommitted(kafka, names.group, names.alerts);
    expect(await stored()).toMatchObject([{ revision: 2, count: 4 }]);
    await send(revision(4, 9), revision(3, 6));
    await waitForCommitted(kafka, names.group, names.alerts);
    // A re-delivered older revision does not overwrite the newer one.
    await send(revision(2, 4));
    await waitForCommitted(kafka, names.group, names.alerts);
    expect(await stored()).toMatchObject([{ revision: 4, count: 9 }]);
  });

  it('sends a document Elasticsearch rejects to the dead-letter topic, and the partition moves on', async () => {
    const { names, streams } = await start('ix-dlq');
    const good = [buildEvent(), buildEvent()];
    // Valid for the audit schema, refused by the mapping: responseStatus.code is an integer field.
    const rejected = buildEvent({ responseStatus: { code: 2 ** 33 } });
    await produceEnvelopes(producer, names.events, [envelope(good[0]!), envelope(rejected)]);
    await producer.send({
      topic: names.events,
      messages: [{ value: '{"cluster":"it","event":"not an envelope"' }],
    });
    await produceEnvelopes(producer, names.events, [envelope(good[1]!)]);
    await waitForCommitted(kafka, names.group, names.events);
    expect(await countDocs(es, streams.events)).toBe(2);

    const letters = await readDeadLetters(kafka, names, 2);
    expect(letters.map((l) => l.offset)).toEqual(['1', '2']);
    expect(letters[0]).toMatchObject({
      source: 'indexer',
      topic: names.events,
      partition: 0,
      cluster: 'it',
      target: streams.events,
    });
    expect(letters[0]!.reason).toMatch(
      /^Elasticsearch rejected the document \(HTTP 400\): document_parsing_exception/,
    );
    expect((letters[0]!.raw as Envelope).event.auditID).toBe(rejected.auditID);
    expect(letters[1]!.reason).toMatch(/^not valid JSON/);
  });

  it('pauses while Elasticsearch is unreachable and, once it is back, has every event exactly once', async () => {
    const proxy = await startCuttableProxy(new URL(stackEnv().esNode));
    try {
      const { names, service, streams } = await start('ix-outage', {
        ES_NODE: proxy.url,
        INDEXER_BATCH_MAX_DOCS: '25',
        INDEXER_LAG_INTERVAL_MS: '500ms',
      });
      const events = Array.from({ length: 300 }, () => envelope(buildEvent()));
      await produceEnvelopes(producer, names.events, events.slice(0, 100));
      await waitFor('the first events to be indexed', async () =>
        (await countDocs(es, streams.events)) > 0 ? true : undefined,
      );

      await proxy.cut();
      await produceEnvelopes(producer, names.events, events.slice(100, 200));
      await waitFor('the indexer to notice Elasticsearch is gone', async () =>
        service.isReady() ? undefined : true,
      );
      const metrics = await (await fetch(`http://127.0.0.1:${service.opsPort}/metrics`)).text();
      expect(metrics).toMatch(/kaudit_indexer_elasticsearch_up\{[^}]*\} 0/);
      expect((await fetch(`http://127.0.0.1:${service.opsPort}/readyz`)).status).toBe(503);
      await produceEnvelopes(producer, names.events, events.slice(200));
      const whileDown = await countDocs(es, streams.events);
      expect(whileDown).toBeLessThan(300);
      // Nothing is committed while Elasticsearch is away, yet the lag gauge shows the growing backlog.
      const committed = await committedOffset(kafka, names.group, names.events);
      expect(committed).toBeLessThan(300);
      await waitFor('the lag gauge to show the backlog', async () => {
        const text = await (await fetch(`http://127.0.0.1:${service.opsPort}/metrics`)).text();
        const pattern = new RegExp(
          `kaudit_indexer_consumer_lag\\{[^}]*topic="${names.events.replaceAll('.', '\\.')}"[^}]*\\} (\\d+)`,
        );
        return Number(pattern.exec(text)?.[1]) === 300 - committed ? true : undefined;
      });

      await proxy.restore();
      await waitForCommitted(kafka, names.group, names.events, 120_000);
      expect(await countDocs(es, streams.events)).toBe(300);
      const perAuditId = await es.search({
        index: streams.events,
        size: 0,
        aggs: { ids: { cardinality: { field: 'kubernetes.audit.auditID', precision_threshold: 1000 } } },
      });
      expect((perAuditId.aggregations!.ids as { value: number }).value).toBe(300);
      expect(service.isReady()).toBe(true);
    } finally {
      await proxy.close();
    }
  });
});

async function committedOffset(kafka: Kafka, group: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return Math.max(0, Number(offsets?.partitions[0]?.offset ?? 0));
  } finally {
    await admin.disconnect();
  }
}

async function readDeadLetters(kafka: Kafka, names: TestNames, expected: number): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  const consumer = kafka.consumer({ groupId: `${names.group}.dlq-reader` });
  await consumer.connect();
  await consumer.subscribe({ topic: names.dlq, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      letters.push(DeadLetterSchema.parse(JSON.parse(message.value!.toString())));
    },
  });
  try {
    await waitFor(`${expected} dead letters`, async () => (letters.length >= expected ? true : undefined));
  } finally {
    await consumer.disconnect();
  }
  return letters.sort((a, b) => Number(a.offset) - Number(b.offset));
}

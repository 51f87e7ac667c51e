import type { Client } from '@elastic/elasticsearch';
import type { Envelope } from '@kaudit/audit-schema';
import type { Kafka, Producer } from 'kafkajs';
import { fires, loadElasticRules, RULES_INDEX, ruleEvents } from '../test/elastic-rules/conformance';
import {
  countDocs,
  createTopics,
  esClient,
  produceEnvelopes,
  stackKafka,
  startTestIndexer,
  testNames,
  waitForCommitted,
} from '../test/stack';
import type { IndexerService } from './service';

/**
 * Conformance with Elastic Security's prebuilt Kubernetes rules (test/elastic-rules/elastic-rules.yaml):
 * every rule's trigger and non-trigger events go through the real indexer into the real Elasticsearch,
 * and the rule's query runs on its own index pattern, logs-kubernetes.audit_logs-*, unchanged. Each
 * rule's events carry their own cluster name, so one rule's query sees only its own events.
 */
jest.setTimeout(240_000);

const { defaults, rules } = loadElasticRules();

describe('indexer > Elastic prebuilt Kubernetes rules (real Kafka and Elasticsearch)', () => {
  let kafka: Kafka;
  let producer: Producer;
  let es: Client;
  let indexer: IndexerService;

  beforeAll(async () => {
    kafka = stackKafka();
    producer = kafka.producer();
    await producer.connect();
    es = esClient();
    const names = testNames('ix-rules');
    await createTopics(kafka, names);
    indexer = await startTestIndexer(names);
    const envelopes: Envelope[] = rules.flatMap((rule, i) =>
      (['t', 'n'] as const).flatMap((side) =>
        ruleEvents(defaults, side === 't' ? rule.trigger : rule.nonTrigger, i, side).map((event) => ({
          cluster: `rule${i}-${side}`,
          receivedAt: '2026-01-05T12:00:00.000Z',
          event,
        })),
      ),
    );
    await produceEnvelopes(producer, names.events, envelopes);
    await waitForCommitted(kafka, names.group, names.events);
    expect(await countDocs(es, RULES_INDEX, { prefix: { 'kaudit.cluster': 'rule' } })).toBeGreaterThanOrEqual(
      envelopes.length,
    );
  });

  afterAll(async () => {
    await indexer?.stop();
    await producer?.disconnect();
    await es?.close();
  });

  it('stores every event where the rules look, with the fields their engine needs', async () => {
    const reply = await es.search<Record<string, Record<string, unknown>>>({
      index: RULES_INDEX,
      size: 1,
      query: { term: { 'kaudit.cluster': 'rule0-t' } },
    });
    const doc = reply.hits.hits[0]!._source!;
    expect(doc.data_stream).toMatchObject({ type: 'logs', dataset: 'kubernetes.audit_logs' });
    // The rules' timestamp_override.
    expect(doc.event?.ingested).toBe('2026-01-05T12:00:00.000Z');
  });

  it.each(rules.filter((rule) => !rule.misses).map((rule) => [rule.name, rule] as const))(
    '%s: its trigger fires it, its non-trigger does not',
    async (_name, rule) => {
      const i = rules.indexOf(rule);
      expect({ rule: rule.id, trigger: await fires(es, rule, `rule${i}-t`) }).toEqual({
        rule: rule.id,
        trigger: true,
      });
      expect({ rule: rule.id, nonTrigger: await fires(es, rule, `rule${i}-n`) }).toEqual({
        rule: rule.id,
        nonTrigger: false,
      });
    },
  );

  it.each(rules.filter((rule) => rule.misses).map((rule) => [rule.name, rule] as const))(
    '%s does not carry over (the README says why), and only for that reason',
    async (_name, rule) => {
      const i = rules.indexOf(rule);
      expect(await fires(es, rule, `rule${i}-t`)).toBe(false);
      expect(await fires(es, rule, `rule${i}-t`, rule.withoutMissing)).toBe(true);
      expect(await fires(es, rule, `rule${i}-n`, rule.withoutMissing)).toBe(false);
    },
  );
});

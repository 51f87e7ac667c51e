import type { Client } from '@elastic/elasticsearch';
import { FindingSchema } from '@kaudit/audit-schema';
import { consumerLag } from '@kaudit/service-kit';
import type { Kafka } from 'kafkajs';
import type { Probe } from '../bench-traffic';
import type { Pipeline } from '../pipeline';
import { readTopics } from '../topic-reader';

/** What the end of a chaos scenario counts (README "Reliability" explains each column). */
export interface Counts {
  events: { acked: number; stored: number; missing: number; duplicated: number };
  findings: {
    expected: number;
    /** Distinct finding ids on the alerts topic for the probes, and messages on it in all. */
    onTopic: number;
    topicMessages: number;
    inElasticsearch: number;
    /** Probe findings stored more than once (by identity) in Elasticsearch. */
    esDuplicated: number;
    atSlack: number;
    /** Probe identities alerted more than once at the Slack stand-in. */
    slackDuplicated: number;
    /** Findings for identities that are not probes (the quiet traffic must raise none). */
    unexpected: number;
  };
}

export interface Lag {
  detector: number;
  indexer: number;
  alerter: number;
}

export async function pipelineLag(kafka: Kafka, pipeline: Pipeline): Promise<Lag> {
  const [detector, indexer, alerter] = await Promise.all([
    consumerLag(kafka, pipeline.groupIds.detector, pipeline.topics.events),
    consumerLag(kafka, pipeline.groupIds.indexer, pipeline.topics.events),
    consumerLag(kafka, pipeline.groupIds.alerter, pipeline.topics.alerts),
  ]);
  return { detector, indexer, alerter };
}

const CHUNK = 5000;

type Bucket = { key: string; doc_count: number };
const termBuckets = (aggregation: unknown): Bucket[] =>
  (aggregation as { buckets?: Bucket[] } | undefined)?.buckets ?? [];
const AUDIT_ID_FIELD = 'kubernetes.audit.auditID';

/** Every acknowledged auditID looked up in the events data stream: missing, or stored more than once. */
async function countEvents(es: Client, index: string, acked: readonly string[]): Promise<Counts['events']> {
  let missing = 0;
  let duplicated = 0;
  for (let from = 0; from < acked.length; from += CHUNK) {
    const chunk = acked.slice(from, from + CHUNK);
    const result = await es.search({
      index,
      size: 0,
      query: { terms: { [AUDIT_ID_FIELD]: chunk } },
      aggs: { ids: { terms: { field: AUDIT_ID_FIELD, size: chunk.length } } },
    });
    const buckets = termBuckets(result.aggregations?.ids);
    missing += chunk.length - buckets.length;
    duplicated += buckets.filter((bucket) => bucket.doc_count > 1).length;
  }
  const stored = (await es.count({ index })).count;
  return { acked: acked.length, stored, missing, duplicated };
}

/** One probe identity per finding: does a Slack message name it (not a longer name it is a prefix of)? */
function mentions(text: string, identity: string): boolean {
  const re = new RegExp(`${identity.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![0-9])`);
  return re.test(text);
}

export async function countAll(options: {
  es: Client;
  kafka: Kafka;
  pipeline: Pipeline;
  acked: readonly string[];
  probes: readonly Probe[];
  groupId: string;
}): Promise<Counts> {
  const { es, kafka, pipeline, probes } = options;
  await es.indices.refresh({ index: [pipeline.dataStreams.events, pipeline.dataStreams.findings] });
  const events = await countEvents(es, pipeline.dataStreams.events, options.acked);
  const probeNames = new Set(probes.map((probe) => probe.identity));

  const messages = await readTopics(kafka, [pipeline.topics.alerts], { groupId: options.groupId });
  const idsByIdentity = new Map<string, Set<string>>();
  const unexpectedIds = new Set<string>();
  for (const message of messages) {
    const parsed = FindingSchema.safeParse(JSON.parse(message.value?.toString('utf8') ?? 'null'));
    if (!parsed.success) continue;
    const name = parsed.data.identity.username;
    if (!probeNames.has(name)) {
      unexpectedIds.add(parsed.data.id);
      continue;
    }
    const ids = idsByIdentity.get(name) ?? new Set<string>();
    ids.add(parsed.data.id);
    idsByIdentity.set(name, ids);
  }

  const stored = await es.search({
    index: pipeline.dataStreams.findings,
    size: 0,
    aggs: { names: { terms: { field: 'user.name', size: probeNames.size + 1000 } } },
  });
  const buckets = termBuckets(stored.aggregations?.names);
  const probeBuckets = buckets.filter((bucket) => probeNames.has(bucket.key));

  const slackTexts = pipeline.slack.messages.map((message) => JSON.stringify(message.body));
  let atSlack = 0;
  let slackDuplicated = 0;
  for (const name of probeNames) {
    const times = slackTexts.filter((text) => mentions(text, name)).length;
    if (times > 0) atSlack += 1;
    if (times > 1) slackDuplicated += 1;
  }

  return {
    events,
    findings: {
      expected: probeNames.size,
      onTopic: [...idsByIdentity.values()].reduce((sum, ids) => sum + ids.size, 0),
      topicMessages: messages.length,
      inElasticsearch: probeBuckets.length,
      esDuplicated: probeBuckets.filter((bucket) => bucket.doc_count > 1).length,
      atSlack,
      slackDuplicated,
      unexpected: unexpectedIds.size,
    },
  };
}

/** Peak resident memory (VmRSS, sampled) of each service, across its restarts. */
export function createMemorySampler(pipeline: Pipeline, everyMs = 2000) {
  const peak: Record<string, number> = {};
  const sample = async () => {
    const { readFile } = await import('node:fs/promises');
    for (const service of pipeline.services) {
      if (service.exited()) continue;
      const status = await readFile(`/proc/${service.pid}/status`, 'utf8').catch(() => '');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak[service.name] = Math.max(peak[service.name] ?? 0, Math.round(kb / 1024));
    }
  };
  const timer = setInterval(() => void sample(), everyMs);
  timer.unref();
  return {
    /** MiB per service name. */
    stop: async () => {
      clearInterval(timer);
      await sample();
      return { ...peak };
    },
  };
}

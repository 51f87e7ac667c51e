import { existsSync } from 'node:fs';
import { DEFAULT_TOPICS } from '@kaudit/audit-schema';
import { type EsConnectionConfig, esConnectionProblems, esResourceEnv } from '@kaudit/es-resources';
import {
  ConfigError,
  envDurationMs,
  envInt,
  envOptional,
  type KafkaSecurity,
  kafkaBrokersEnv,
  loadKafkaSecurity,
  parseConfig,
  startupTimeoutEnv,
} from '@kaudit/service-kit';
import { z } from 'zod';

const MiB = 1024 * 1024;
const DEFAULT_ES_NODE = 'http://127.0.0.1:9200';

/** Keys are the variable names an operator sets (services/indexer/README.md lists them). */
export const IndexerEnvSchema = z.object({
  ...kafkaBrokersEnv,
  ...startupTimeoutEnv,
  ES_NODE: z.string().min(1).default(DEFAULT_ES_NODE),
  ES_API_KEY: envOptional(),
  ES_USERNAME: envOptional(),
  ES_PASSWORD: envOptional(),
  ES_CA_FILE: envOptional(),
  ES_REQUEST_TIMEOUT_MS: envDurationMs(30_000).refine((ms) => ms >= 1000, 'must be at least 1s'),
  // ES_DATA_STREAM_NAMESPACE, ES_RETENTION, ES_NUMBER_OF_REPLICAS, ES_ILM_POLICY: parsed as es-setup parses them.
  ...esResourceEnv,
  ES_POLICIES_DIR: envOptional(),
  AUDIT_EVENTS_TOPIC: z.string().min(1).default(DEFAULT_TOPICS.events),
  AUDIT_ALERTS_TOPIC: z.string().min(1).default(DEFAULT_TOPICS.alerts),
  AUDIT_DLQ_TOPIC: z.string().min(1).default(DEFAULT_TOPICS.dlq),
  INDEXER_GROUP_ID: z.string().min(1).default('kaudit-indexer'),
  INDEXER_BATCH_MAX_DOCS: envInt(1000, { min: 1, max: 100_000 }),
  INDEXER_BATCH_MAX_BYTES: envInt(5 * MiB, { min: 16 * 1024, max: 90 * MiB }),
  INDEXER_FLUSH_INTERVAL_MS: envDurationMs(1000).refine(
    (ms) => ms >= 10 && ms <= 60_000,
    'must be between 10ms and 60s',
  ),
  INDEXER_PARTITIONS_CONCURRENCY: envInt(2, { min: 1, max: 64 }),
  INDEXER_MAX_ITEM_RETRIES: envInt(10, { min: 0 }),
  INDEXER_RETRY_MAX_DELAY_MS: envDurationMs(10_000).refine((ms) => ms >= 10, 'must be at least 10ms'),
  INDEXER_LAG_INTERVAL_MS: envDurationMs(10_000).refine((ms) => ms >= 100, 'must be at least 100ms'),
  INDEXER_PORT: envInt(9302, { min: 0, max: 65535 }),
  INDEXER_HOST: z.string().min(1).default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Checks across variables, on the raw values, so they are reported with the per-variable problems. */
function crossProblems(env: Record<string, string | undefined>): string[] {
  const value = (name: string) => (env[name]?.trim() ? env[name]!.trim() : undefined);
  const problems = esConnectionProblems({
    node: value('ES_NODE') ?? DEFAULT_ES_NODE,
    apiKey: value('ES_API_KEY'),
    username: value('ES_USERNAME'),
    password: value('ES_PASSWORD'),
    caFile: value('ES_CA_FILE'),
  });
  const caFile = value('ES_CA_FILE');
  if (caFile !== undefined && !existsSync(caFile)) problems.push(`ES_CA_FILE: file ${caFile} does not exist`);
  const policiesDir = value('ES_POLICIES_DIR');
  if (policiesDir !== undefined && !existsSync(policiesDir)) {
    problems.push(`ES_POLICIES_DIR: directory ${policiesDir} does not exist`);
  }
  const topics = [
    value('AUDIT_EVENTS_TOPIC') ?? DEFAULT_TOPICS.events,
    value('AUDIT_ALERTS_TOPIC') ?? DEFAULT_TOPICS.alerts,
    value('AUDIT_DLQ_TOPIC') ?? DEFAULT_TOPICS.dlq,
  ];
  if (new Set(topics).size !== topics.length) {
    problems.push(
      'AUDIT_DLQ_TOPIC: AUDIT_EVENTS_TOPIC, AUDIT_ALERTS_TOPIC and AUDIT_DLQ_TOPIC must be three different topics',
    );
  }
  return problems;
}

export type IndexerEnv = z.infer<typeof IndexerEnvSchema>;

export interface IndexerConfig {
  kafkaBrokers: string[];
  /** KAFKA_STARTUP_TIMEOUT: how long the start may wait for Kafka (and Elasticsearch) to come up. */
  kafkaStartupTimeoutMs: number;
  kafkaSecurity: KafkaSecurity;
  es: Required<Pick<EsConnectionConfig, 'node' | 'requestTimeoutMs'>> & EsConnectionConfig;
  namespace: string;
  retention: string;
  numberOfReplicas: number;
  ilm: boolean;
  policiesDir: string | undefined;
  eventsTopic: string;
  alertsTopic: string;
  dlqTopic: string;
  groupId: string;
  batchMaxDocs: number;
  batchMaxBytes: number;
  flushIntervalMs: number;
  partitionsConcurrency: number;
  maxItemRetries: number;
  retryMaxDelayMs: number;
  /** How often kaudit_indexer_consumer_lag is refreshed from the broker. */
  lagIntervalMs: number;
  port: number;
  host: string;
  logLevel: IndexerEnv['LOG_LEVEL'];
}

/** The indexer's one reader of the environment; throws ConfigError naming every problem at once. */
export function loadIndexerConfig(env: Record<string, string | undefined> = process.env): IndexerConfig {
  const { value: parsed, problems } = parseConfig(IndexerEnvSchema, env);
  problems.push(...crossProblems(env));
  const kafkaSecurity = loadKafkaSecurity(env, problems);
  if (problems.length > 0 || !parsed) throw new ConfigError(problems);
  return {
    kafkaBrokers: parsed.KAFKA_BROKERS,
    kafkaStartupTimeoutMs: parsed.KAFKA_STARTUP_TIMEOUT,
    kafkaSecurity,
    es: {
      node: parsed.ES_NODE,
      apiKey: parsed.ES_API_KEY,
      username: parsed.ES_USERNAME,
      password: parsed.ES_PASSWORD,
      caFile: parsed.ES_CA_FILE,
      requestTimeoutMs: parsed.ES_REQUEST_TIMEOUT_MS,
    },
    namespace: parsed.ES_DATA_STREAM_NAMESPACE,
    retention: parsed.ES_RETENTION,
    numberOfReplicas: parsed.ES_NUMBER_OF_REPLICAS,
    ilm: parsed.ES_ILM_POLICY,
    policiesDir: parsed.ES_POLICIES_DIR,
    eventsTopic: parsed.AUDIT_EVENTS_TOPIC,
    alertsTopic: parsed.AUDIT_ALERTS_TOPIC,
    dlqTopic: parsed.AUDIT_DLQ_TOPIC,
    groupId: parsed.INDEXER_GROUP_ID,
    batchMaxDocs: parsed.INDEXER_BATCH_MAX_DOCS,
    batchMaxBytes: parsed.INDEXER_BATCH_MAX_BYTES,
    flushIntervalMs: parsed.INDEXER_FLUSH_INTERVAL_MS,
    partitionsConcurrency: parsed.INDEXER_PARTITIONS_CONCURRENCY,
    maxItemRetries: parsed.INDEXER_MAX_ITEM_RETRIES,
    retryMaxDelayMs: parsed.INDEXER_RETRY_MAX_DELAY_MS,
    lagIntervalMs: parsed.INDEXER_LAG_INTERVAL_MS,
    port: parsed.INDEXER_PORT,
    host: parsed.INDEXER_HOST,
    logLevel: parsed.LOG_LEVEL,
  };
}

/** What is safe to log of the configuration: never the API key or password. */
export function describeConfig(config: IndexerConfig): Record<string, unknown> {
  const { es, ...rest } = config;
  return {
    ...rest,
    es: {
      node: es.node,
      auth: es.apiKey ? 'api-key' : es.username ? `basic (${es.username})` : 'none',
      caFile: es.caFile,
    },
  };
}

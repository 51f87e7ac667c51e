import { type Admin, type ITopicConfig, Kafka, type KafkaConfig, type LogEntry, logLevel } from 'kafkajs';
import type { Logger } from 'pino';
import { envList } from '../config';
import { AppError } from '../errors';
import { keyPartitioner } from './partitioner';
import type { KafkaSecurity } from './security';

// kafkajs 2 warns on every producer about its v2 partitioner change; we key messages explicitly.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

/** Where every service looks for Kafka when KAFKA_BROKERS is unset (README's shared table says the same). */
export const DEFAULT_KAFKA_BROKERS = 'localhost:9092';

/** The KAFKA_BROKERS variable, for each service's config schema: one default, one rule. */
export const kafkaBrokersEnv = {
  KAFKA_BROKERS: envList([DEFAULT_KAFKA_BROKERS]).refine(
    (list) => list.length > 0,
    'needs at least one broker',
  ),
};

export interface CreateKafkaOptions {
  clientId: string;
  brokers: string[];
  logger: Logger;
  /** TLS and SASL from parseKafkaSecurity (the KAFKA_SSL_* / KAFKA_SASL_* variables); wins over ssl/sasl. */
  security?: KafkaSecurity;
  ssl?: KafkaConfig['ssl'];
  sasl?: KafkaConfig['sasl'];
  /** kafkajs client-level retry (connections, metadata); services add their own around produce/commit. */
  retry?: KafkaConfig['retry'];
  connectionTimeout?: number;
}

const levelNames: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * The messages of the broker errors kafkajs retries by itself (its own table, protocol/error.js, which
 * its typings leave out): "The coordinator is loading…", "There is no leader for this topic-partition…",
 * CONCURRENT_TRANSACTIONS and the like — what a broker that is still starting answers.
 */
const RETRIED_BROKER_ERRORS: ReadonlySet<string> = new Set(
  (
    require('kafkajs/src/protocol/error') as { errorCodes: Array<{ message: string; retriable: boolean }> }
  ).errorCodes.flatMap((code) => (code.retriable ? [code.message] : [])),
);

/**
 * kafkajs' error lines that announce a retry of a broker error it retries, by namespace: the prefix
 * before the broker's message. A consumer that met one while joining its group restarts itself (kafkajs
 * restarts only on retriable errors); a send that met one is sent again (CONCURRENT_TRANSACTIONS right
 * after a transaction's commit, say).
 */
const RETRY_PREFIXES: Record<string, string> = {
  Consumer: 'Crash: KafkaJSProtocolError: ',
  Producer: 'Failed to send messages: ',
};

/**
 * The pino level of a kafkajs log entry: its own, except for what kafkajs logs as an error before it
 * deals with it. An answer to CreateTopics with errors is for ensureTopics to judge (debug: a topic
 * another process created at the same instant is the outcome wanted, the rest is thrown there). An
 * answer with a broker error kafkajs retries (`error`, the entry's field), the crash or failed send it
 * retries after one, and the consumer restart it announces are warnings: services starting together on
 * a fresh broker, or a sink's workers, would otherwise each log error lines for a start that went
 * right; what still fails after kafkajs' retries reaches the service, which says so. The sink bounds
 * its idempotent producer's retries on purpose (a send that keeps failing goes to its spool; consumers
 * de-duplicate, services/sink/README.md): kafkajs' warning about that is information.
 */
export function kafkajsLogLevel(
  namespace: string,
  level: number,
  message: unknown,
  error?: unknown,
): 'error' | 'warn' | 'info' | 'debug' {
  const own = levelNames[level] ?? 'info';
  if (typeof message !== 'string') return own;
  if (namespace === 'Connection' && message.startsWith('Response CreateTopics')) return 'debug';
  if (namespace === 'Producer' && message.startsWith('Limiting retries for the idempotent producer'))
    return 'info';
  if (own !== 'error') return own;
  if (namespace === 'Connection')
    return message.startsWith('Response ') && typeof error === 'string' && RETRIED_BROKER_ERRORS.has(error)
      ? 'warn'
      : own;
  if (namespace === 'Consumer' && message.startsWith('Restarting the consumer in ')) return 'warn';
  const prefix = RETRY_PREFIXES[namespace];
  return prefix !== undefined &&
    message.startsWith(prefix) &&
    RETRIED_BROKER_ERRORS.has(message.slice(prefix.length))
    ? 'warn'
    : own;
}

/**
 * A kafkajs client whose own logs go through pino, under component=kafkajs, and whose producers
 * partition keys as kafkajs' DefaultPartitioner does, at a fraction of its cost (partitioner.ts).
 */
export function createKafka(options: CreateKafkaOptions): Kafka {
  const kafkaLogger = options.logger.child({ component: 'kafkajs' });
  const ssl = options.security?.ssl ?? options.ssl;
  const sasl = options.security?.sasl ?? options.sasl;
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    ...(ssl !== undefined ? { ssl } : {}),
    ...(sasl !== undefined ? { sasl } : {}),
    ...(options.retry !== undefined ? { retry: options.retry } : {}),
    connectionTimeout: options.connectionTimeout ?? 3000,
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ namespace, level, log }: LogEntry) => {
        const {
          message,
          timestamp: _timestamp,
          logger: _logger,
          ...extra
        } = log as typeof log & Record<string, unknown>;
        kafkaLogger[kafkajsLogLevel(namespace, level, message, extra.error)](
          { namespace, ...extra },
          message,
        );
      },
  });
  const producer = kafka.producer.bind(kafka);
  kafka.producer = (config) => producer({ createPartitioner: keyPartitioner, ...config });
  return kafka;
}

export interface TopicSpec {
  topic: string;
  numPartitions?: number;
  replicationFactor?: number;
  configEntries?: ITopicConfig['configEntries'];
}

/**
 * Creates the topics that do not exist yet (existing topics are left as they are), then waits until
 * every partition of every topic named has a leader in the metadata: on a freshly formatted broker a
 * topic is listed before its partitions are served, and a consumer or producer started then fails with
 * "This server does not host this topic-partition". Not retried here: a transient failure (that one,
 * connection refused) is thrown retriable, for the caller's start-up retry (startup.ts) to run it again.
 * Resolves to each topic's partition count.
 */
export async function ensureTopics(kafka: Kafka, topics: TopicSpec[]): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.topic));
    if (missing.length > 0) {
      try {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((t) => ({
            topic: t.topic,
            numPartitions: t.numPartitions ?? 3,
            replicationFactor: t.replicationFactor ?? -1,
            ...(t.configEntries ? { configEntries: t.configEntries } : {}),
          })),
        });
      } catch (error) {
        // Another process created it between listTopics and createTopics: that is the outcome we wanted.
        if ((error as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw error;
      }
    }
    return await requireLeaders(
      admin,
      topics.map((t) => t.topic),
    );
  } finally {
    await admin.disconnect();
  }
}

async function requireLeaders(admin: Admin, topics: string[]): Promise<Map<string, number>> {
  const metadata = await admin.fetchTopicMetadata({ topics });
  const leaderless = metadata.topics.flatMap((t) =>
    t.partitions.length === 0
      ? [`${t.name} (no partitions)`]
      : t.partitions.filter((p) => p.leader < 0).map((p) => `${t.name}/${p.partitionId}`),
  );
  if (leaderless.length > 0) {
    throw new AppError('KAUDIT_ERR_KAFKA', `no leader yet for ${leaderless.join(', ')}`, { retriable: true });
  }
  return new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
}

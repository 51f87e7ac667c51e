import { connect, createServer, type Server, type Socket } from 'node:net';
import { Client } from '@elastic/elasticsearch';
import type { Envelope } from '@kaudit/audit-schema';
import { createKafka, createLogger, ensureTopics, type Logger } from '@kaudit/service-kit';
import { stackEnv, uniqueName, waitFor } from '@kaudit/testkit';
import type { Kafka, Producer } from 'kafkajs';
import { loadIndexerConfig } from '../src/config';
import { type IndexerService, startIndexerService } from '../src/service';

/** Helpers for the indexer's integration tests and benchmark: unique names on the real stack. */
export interface TestNames {
  events: string;
  alerts: string;
  dlq: string;
  group: string;
  namespace: string;
}

export function testNames(prefix: string): TestNames {
  const base = uniqueName(prefix);
  return {
    events: `${base}.events`,
    alerts: `${base}.alerts`,
    dlq: `${base}.dlq`,
    group: `${base}.indexer`,
    // Data stream namespaces may not contain "-".
    namespace: base.replaceAll('-', '_').toLowerCase(),
  };
}

export const logger: Logger = createLogger({
  service: 'indexer-test',
  level: process.env.TEST_LOG_LEVEL ?? 'silent',
});

export function stackKafka(): Kafka {
  return createKafka({ clientId: 'indexer-test', brokers: stackEnv().kafkaBrokers, logger });
}

export async function createTopics(kafka: Kafka, names: TestNames, numPartitions = 1): Promise<void> {
  await ensureTopics(
    kafka,
    [names.events, names.alerts, names.dlq].map((topic) => ({ topic, numPartitions, replicationFactor: 1 })),
  );
}

export function startTestIndexer(
  names: TestNames,
  env: Record<string, string> = {},
): Promise<IndexerService> {
  const config = loadIndexerConfig({
    KAFKA_BROKERS: stackEnv().kafkaBrokers.join(','),
    ES_NODE: stackEnv().esNode,
    AUDIT_EVENTS_TOPIC: names.events,
    AUDIT_ALERTS_TOPIC: names.alerts,
    AUDIT_DLQ_TOPIC: names.dlq,
    INDEXER_GROUP_ID: names.group,
    ES_DATA_STREAM_NAMESPACE: names.namespace,
    ES_NUMBER_OF_REPLICAS: '0',
    INDEXER_PORT: '0',
    INDEXER_HOST: '127.0.0.1',
    INDEXER_FLUSH_INTERVAL_MS: '100ms',
    INDEXER_RETRY_MAX_DELAY_MS: '1s',
    ...env,
  });
  return startIndexerService(config, logger);
}

export async function produceEnvelopes(
  producer: Producer,
  topic: string,
  envelopes: Envelope[],
): Promise<void> {
  // Kafka refuses a produce request above its max message size (1 MiB by default): send in slices.
  let messages: Array<{ key: string; value: string }> = [];
  let bytes = 0;
  const flush = async () => {
    if (messages.length > 0) await producer.send({ topic, messages });
    messages = [];
    bytes = 0;
  };
  for (const envelope of envelopes) {
    const value = JSON.stringify(envelope);
    if (bytes + value.length > 512 * 1024 || messages.length >= 1000) await flush();
    messages.push({ key: `${envelope.cluster}/${envelope.event.user.username}`, value });
    bytes += value.length;
  }
  await flush();
}

/** Resolves once the group has committed every message of the topic (all of it is in Elasticsearch). */
export async function waitForCommitted(
  kafka: Kafka,
  group: string,
  topic: string,
  timeoutMs = 60_000,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await waitFor(
      `group ${group} to commit all of ${topic}`,
      async () => {
        const [ends, committed] = await Promise.all([
          admin.fetchTopicOffsets(topic),
          admin.fetchOffsets({ groupId: group, topics: [topic] }),
        ]);
        const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
        return ends.every((end) => Number(end.high) === 0 || done.get(end.partition) === Number(end.high))
          ? true
          : undefined;
      },
      timeoutMs,
    );
  } finally {
    await admin.disconnect();
  }
}

export function esClient(): Client {
  return new Client({ node: stackEnv().esNode });
}

export async function countDocs(client: Client, index: string, query?: object): Promise<number> {
  await client.indices.refresh({ index });
  return (await client.count({ index, ...(query ? { query } : {}) })).count;
}

/**
 * A TCP proxy in front of Elasticsearch that a test can cut and restore: the shared Elasticsearch
 * must never be stopped, so unreachability is simulated here.
 */
export async function startCuttableProxy(target: URL): Promise<{
  url: string;
  cut: () => Promise<void>;
  restore: () => Promise<void>;
  close: () => Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((client) => {
        const upstream = connect(Number(target.port), target.hostname);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  const cut = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  await listen();
  return { url: `http://127.0.0.1:${port}`, cut, restore: listen, close: cut };
}

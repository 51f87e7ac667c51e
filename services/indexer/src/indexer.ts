import type { Client } from '@elastic/elasticsearch';
import { errors } from '@elastic/elasticsearch';
import type { DeadLetter } from '@kaudit/audit-schema';
import { type DatasetKind, dataStreamNames } from '@kaudit/es-resources';
import { type Liveness, type Logger, logConsumerCrash, retry, sleep } from '@kaudit/service-kit';
import type { EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { createBulkWriter, type ItemResult } from './bulk-writer';
import type { IndexerConfig } from './config';
import { createLagSampler } from './consumer-lag';
import type { DeadLetterPublisher } from './dead-letters';
import { chunkByLimits, type Decoded, decodeMessage } from './decode-message';
import { upsertFindings } from './finding-upsert';
import type { IndexerMetrics } from './metrics';

export interface IndexerDeps {
  kafka: Kafka;
  client: Client;
  deadLetters: DeadLetterPublisher;
  logger: Logger;
  metrics: IndexerMetrics;
  config: Pick<
    IndexerConfig,
    | 'eventsTopic'
    | 'alertsTopic'
    | 'groupId'
    | 'namespace'
    | 'batchMaxDocs'
    | 'batchMaxBytes'
    | 'flushIntervalMs'
    | 'partitionsConcurrency'
    | 'maxItemRetries'
    | 'retryMaxDelayMs'
    | 'lagIntervalMs'
  >;
  /** The crash policy: a consumer crash kafkajs will not restart makes the process dead (liveness.ts). */
  liveness?: Liveness;
}

interface Entry {
  message: KafkaMessage;
  decoded: Decoded;
}

/** Thrown inside a batch to leave it unfinished: its offsets stay unresolved and are consumed again. */
class BatchAbandoned extends Error {}

const MiB = 1024 * 1024;
const SAMPLE_INTERVAL_MS = 5000;
const FETCH_MIN_BYTES = 256 * 1024;

/**
 * The consumer loop: both topics in one group, each fetched batch cut into _bulk requests bounded by
 * count and bytes (Kafka's fetch wait bounds the time), offsets committed per request only once
 * Elasticsearch acknowledged every document of it (or its rejection reached the dead-letter topic).
 * While Elasticsearch is unreachable the consumer pauses, the batch in hand is retried until it is
 * answered, and consumption resumes: nothing is skipped.
 */
export function createIndexer(deps: IndexerDeps) {
  const { kafka, client, deadLetters, metrics, config } = deps;
  const logger = deps.logger.child({ component: 'consumer' });
  const abort = new AbortController();
  const dataStreams = dataStreamNames(config.namespace);
  const kindOf: Record<string, DatasetKind> = {
    [config.eventsTopic]: 'events',
    [config.alertsTopic]: 'findings',
  };
  const topics = [config.eventsTopic, config.alertsTopic];
  const writer = createBulkWriter({
    client,
    logger: deps.logger.child({ component: 'bulk' }),
    metrics,
    maxItemRetries: config.maxItemRetries,
    maxDelayMs: config.retryMaxDelayMs,
    signal: abort.signal,
  });
  const consumer = kafka.consumer({
    groupId: config.groupId,
    // The broker holds a fetch until some bytes are there or the flush interval passed: that is the
    // time bound of a batch, and at low volume its latency. Not a whole batch's worth: kafkajs fetches
    // again only once every batch of the last fetch is written, so waiting for 5 MiB left
    // Elasticsearch idle for the wait on every round (bench:e2e); what arrives meanwhile makes the
    // next batch larger anyway.
    minBytes: Math.min(FETCH_MIN_BYTES, config.batchMaxBytes),
    maxWaitTimeInMs: config.flushIntervalMs,
    maxBytesPerPartition: Math.max(MiB, config.batchMaxBytes),
    maxBytes: Math.max(10 * MiB, 2 * config.batchMaxBytes),
    sessionTimeout: 30_000,
    heartbeatInterval: 3000,
  });

  let joined = false;
  let esReachable = true;
  let stopping = false;
  let acknowledged = 0;
  let sampler: NodeJS.Timeout | undefined;
  const lag = createLagSampler({
    admin: kafka.admin(),
    groupId: config.groupId,
    topics,
    metrics,
    logger: deps.logger.child({ component: 'lag' }),
    intervalMs: config.lagIntervalMs,
  });

  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    joined = true;
    logger.info({ groupId: payload.groupId, assignment: payload.memberAssignment }, 'joined consumer group');
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    metrics.errors.inc({ stage: 'consumer', type: payload.error.name });
    logConsumerCrash(logger, payload);
    joined = false;
  });
  deps.liveness?.watchConsumer(consumer, 'events and findings consumer');

  const pauseAll = () => consumer.pause(topics.map((topic) => ({ topic })));
  const resumeAll = () => consumer.resume(topics.map((topic) => ({ topic })));

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { topic, partition } = batch;
    const kind = kindOf[topic];
    if (!kind || batch.messages.length === 0) return;
    metrics.received.inc({ topic }, batch.messages.length);
    // Lazily: each chunk is decoded only when the loop below asks for it.
    const entries = (function* () {
      for (const message of batch.messages)
        yield { message, decoded: decodeMessage(kind, message.value, dataStreams, config.namespace) };
    })();
    const chunks = chunkByLimits<Entry>(
      entries,
      (entry) => (entry.decoded.ok === true ? entry.decoded.item.bytes : 0),
      config.batchMaxDocs,
      config.batchMaxBytes,
    );
    const hooks = {
      wait: (delayMs: number) => waitHeartbeating(payload, delayMs),
      onUnreachable: () => {
        esReachable = false;
        logger.warn({ topics }, 'pausing consumption until Elasticsearch answers');
        pauseAll();
      },
      onReachable: () => {
        esReachable = true;
        logger.info({ topics }, 'resuming consumption');
        resumeAll();
      },
    };

    const send = (chunk: Entry[]): Promise<ItemResult[]> => {
      const items = chunk.flatMap((entry) => (entry.decoded.ok === true ? [entry.decoded.item] : []));
      const write = (pending: typeof items) => writer.write(pending, hooks);
      if (items.length === 0) return Promise.resolve([]);
      if (kind === 'findings') return upsertFindings(client, dataStreams.findings, items, write, hooks.wait);
      return write(items);
    };

    const start = (chunk: Entry[]): Promise<ItemResult[]> => {
      const written = send(chunk);
      // Nothing is lost if a chunk's write fails, or is left unawaited when an earlier chunk's commit
      // fails: the batch is consumed again from the last commit.
      written.catch(() => undefined);
      return written;
    };
    const canGoOn = () => !stopping && payload.isRunning() && !payload.isStale();

    // The next chunk is decoded while Elasticsearch indexes this one: decoding is the indexer's own
    // CPU time, and done up front for the whole batch it left Elasticsearch idle meanwhile (bench:e2e).
    let inFlight: Promise<ItemResult[]> | undefined;
    for (let chunk = chunks.next().value; chunk; ) {
      if (!canGoOn()) return;
      const written = inFlight ?? start(chunk);
      await new Promise(setImmediate); // let the request go out before the CPU is taken
      const following = chunks.next().value;
      let results: ItemResult[];
      try {
        results = await written;
      } catch (error) {
        if (error instanceof BatchAbandoned || error instanceof errors.RequestAbortedError) {
          logger.info(
            { topic, partition },
            'batch left unfinished (stopping or rebalancing): it will be consumed again',
          );
          return;
        }
        throw error;
      }
      // Events: the following chunk's _bulk goes out now, while this one's dead letters and offsets are
      // written, so Elasticsearch is not left waiting on Kafka's round trips (small chunks at a steady
      // rate, bench:e2e). A document's id is its content's hash: two writes in either order store the
      // same, and a redelivered one is a duplicate. Findings wait: an upsert reads what it may replace.
      inFlight = kind === 'events' && following && canGoOn() ? start(following) : undefined;

      const letters: DeadLetter[] = [];
      let result = 0;
      const counts = { created: 0, duplicate: 0 };
      for (const entry of chunk) {
        const base = {
          source: 'indexer' as const,
          at: new Date().toISOString(),
          topic,
          partition,
          offset: entry.message.offset,
        };
        if (entry.decoded.ok === 'copy') continue;
        if (entry.decoded.ok === false) {
          metrics.deadLetters.inc({ reason: 'invalid_message' });
          letters.push({
            ...base,
            reason: entry.decoded.reason,
            cluster: entry.decoded.cluster,
            raw: entry.decoded.raw,
          });
          continue;
        }
        const outcome = results[result++]!;
        if (outcome.result !== 'rejected') {
          counts[outcome.result] += 1;
          continue;
        }
        metrics.deadLetters.inc({ reason: outcome.retriesExhausted ? 'retries_exhausted' : 'rejected' });
        letters.push({
          ...base,
          reason: outcome.retriesExhausted
            ? `Elasticsearch kept failing (HTTP ${outcome.status}) after ${config.maxItemRetries} retries: ${outcome.reason}`
            : `Elasticsearch rejected the document (HTTP ${outcome.status}): ${outcome.reason}`,
          cluster: entry.decoded.item.cluster,
          target: entry.decoded.item.index,
          raw: rawValue(entry.message),
        });
      }
      if (letters.length > 0) {
        await retry(() => deadLetters.publish(letters), {
          retries: 5,
          initialDelayMs: 200,
          maxDelayMs: 5000,
          onRetry: (err, attempt) => {
            metrics.errors.inc({ stage: 'dead_letter', type: (err as Error).name });
            logger.warn({ err, attempt }, 'dead-letter publish failed; retrying');
          },
        });
        logger.warn(
          { topic, partition, deadLetters: letters.length, reason: letters[0]!.reason },
          'documents sent to the dead-letter topic',
        );
      }
      metrics.documents.inc({ kind, result: 'created' }, counts.created);
      metrics.documents.inc({ kind, result: 'duplicate' }, counts.duplicate);
      acknowledged += counts.created + counts.duplicate;

      const last = chunk.at(-1)!.message.offset;
      const next = (BigInt(last) + 1n).toString();
      payload.resolveOffset(last);
      try {
        await payload.commitOffsetsIfNecessary({
          topics: [{ topic, partitions: [{ partition, offset: next }] }],
        });
      } catch (error) {
        metrics.errors.inc({ stage: 'commit', type: (error as Error).name });
        throw error;
      }
      metrics.consumerLag.set(
        { topic, partition: String(partition) },
        Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(next))),
      );
      logger.debug({ topic, partition, offset: last, ...counts, deadLetters: letters.length }, 'committed');
      await payload.heartbeat();
      chunk = following;
    }
  }

  /** Sleeps in slices, heartbeating so the group keeps the partition; gives up on stop or rebalance. */
  async function waitHeartbeating(payload: EachBatchPayload, delayMs: number): Promise<void> {
    const deadline = Date.now() + delayMs;
    for (;;) {
      if (stopping || !payload.isRunning() || payload.isStale()) throw new BatchAbandoned();
      const left = deadline - Date.now();
      if (left <= 0) return;
      try {
        await sleep(Math.min(left, 1000), abort.signal);
      } catch {
        throw new BatchAbandoned();
      }
      await payload.heartbeat();
    }
  }

  return {
    async start(): Promise<void> {
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: config.partitionsConcurrency,
        eachBatch,
      });
      let last = { at: Date.now(), count: acknowledged };
      sampler = setInterval(() => {
        const now = { at: Date.now(), count: acknowledged };
        metrics.documentsPerSecond.set(((now.count - last.count) * 1000) / Math.max(1, now.at - last.at));
        last = now;
      }, SAMPLE_INTERVAL_MS);
      sampler.unref();
      lag.start();
    },
    /** Leaves the group; an unfinished batch is abandoned uncommitted and consumed again later. */
    async stop(): Promise<void> {
      stopping = true;
      abort.abort();
      if (sampler) clearInterval(sampler);
      await lag.stop();
      await consumer.disconnect();
    },
    isReady: () => joined && esReachable && !stopping,
    /** Documents Elasticsearch acknowledged since start (created or already stored). */
    acknowledged: () => acknowledged,
  };
}

export type Indexer = ReturnType<typeof createIndexer>;

function rawValue(message: KafkaMessage): unknown {
  const text = message.value?.toString('utf8') ?? null;
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

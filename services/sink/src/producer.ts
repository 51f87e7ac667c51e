import { backoffDelayMs, sleep, withTimeout } from '@kaudit/common';
import { AppError, createStartup, ensureTopics, type Logger } from '@kaudit/service-kit';
import { CompressionTypes, type Kafka, type Producer } from 'kafkajs';
import type { SinkMetrics } from './metrics';
import type { OutMessage } from './spool-format';

/** Reconnecting to Kafka: 500 ms doubling to 30 s; the spool holds events meanwhile. */
const RECONNECT_BACKOFF = { initialDelayMs: 500, maxDelayMs: 30_000, jitter: 'none' } as const;

/**
 * The sink's only way to Kafka: a kafkajs idempotent producer (acks=-1, GZIP) behind a small queue
 * that coalesces concurrent requests into one produce request (kafkajs sends one request per broker at
 * a time for an idempotent producer, so batching is where the throughput comes from) and splits big
 * requests so no partition's record batch can pass the broker's 1 MB default message.max.bytes.
 */
export interface Sender {
  /** Connects in the background, retrying until stop(); ensures the topics exist once connected. */
  start(): void;
  isConnected(): boolean;
  /**
   * Resolves when Kafka acknowledged every message. With timeoutMs, rejects after it; chunks not yet
   * handed to kafkajs are withdrawn, one already in flight may still land (a duplicate, never a loss).
   */
  send(
    messages: readonly OutMessage[],
    options: { path: 'direct' | 'drain' | 'bridge'; timeoutMs?: number },
  ): Promise<void>;
  /** Waits for in-flight produce requests (up to timeoutMs), then disconnects. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface SenderOptions {
  kafka: Kafka;
  logger: Logger;
  metrics: SinkMetrics;
  /** Created at connect when missing (best effort: a cluster may forbid it and pre-create them). */
  topics: string[];
  /** Upper bound on the uncompressed bytes of one produce request (default 1 MiB). */
  maxRequestBytes?: number;
  /** KAFKA_STARTUP_TIMEOUT: how long ensuring the topics is retried after a connect (default 2 min). */
  startupTimeoutMs?: number;
}

interface Chunk {
  messages: readonly OutMessage[];
  bytes: number;
  path: 'direct' | 'drain' | 'bridge';
  state: 'queued' | 'sending' | 'cancelled';
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Kafka rejected the content itself: retrying the same bytes can never succeed. */
const POISON_TYPES = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
]);

export function isPoisonError(error: unknown): boolean {
  for (let e = error as { type?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (typeof e.type === 'string' && POISON_TYPES.has(e.type)) return true;
    e = e.cause as typeof e;
  }
  return false;
}

export function messageBytes(message: OutMessage): number {
  // UTF-16 length is a cheap, close upper bound for the JSON we send (mostly ASCII).
  return message.value.length + (message.key?.length ?? 0) + 64;
}

export function createKafkaSender(options: SenderOptions): Sender {
  const { kafka, metrics } = options;
  const logger = options.logger.child({ component: 'producer' });
  const maxRequestBytes = options.maxRequestBytes ?? 1024 * 1024;
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    // Bounded (kafkajs would retry an idempotent send forever): a failed send goes to the spool instead.
    retry: { retries: 6, initialRetryTime: 200, maxRetryTime: 2000 },
  });
  let connected = false;
  let stopped = false;
  const stopSignal = new AbortController();
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const queue: Chunk[] = [];
  /** Partitions per topic, for messages produced to every partition (OutMessage.everyPartition). */
  const partitionCounts = new Map<string, number>();

  /** A topic's partition count: known since the topics were ensured, else asked for (then kept). */
  async function partitionsOf(topic: string): Promise<number> {
    const known = partitionCounts.get(topic);
    if (known !== undefined) return known;
    const admin = kafka.admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      const count = metadata.topics[0]?.partitions.length ?? 0;
      if (count === 0) throw new Error(`topic ${topic} has no partitions yet`);
      partitionCounts.set(topic, count);
      return count;
    } finally {
      await admin.disconnect();
    }
  }

  producer.on(producer.events.DISCONNECT, () => {
    if (!connected) return;
    connected = false;
    metrics.kafkaConnected.set(0);
    if (!stopped) {
      logger.warn('producer disconnected: reconnecting');
      connectLoop();
    }
  });

  function connectLoop(): void {
    void (async () => {
      for (let attempt = 0; !stopped && !connected; attempt++) {
        try {
          await producer.connect();
          connected = true;
          metrics.kafkaConnected.set(1);
          logger.info('connected to Kafka');
        } catch (err) {
          metrics.errors.inc({ stage: 'connect', type: (err as Error).name ?? 'Error' });
          logger.warn({ err, attempt }, 'cannot connect to Kafka: events go to the spool meanwhile');
          await sleep(backoffDelayMs(attempt, RECONNECT_BACKOFF), stopSignal.signal).catch(() => undefined);
        }
      }
      if (!connected) return;
      // Retried while a fresh broker still propagates new topics; never fatal: the spool covers the gap.
      const startup = createStartup({ logger, timeoutMs: options.startupTimeoutMs ?? 120_000 });
      await startup
        .step(
          'ensure topics',
          () =>
            ensureTopics(
              kafka,
              options.topics.map((topic) => ({ topic })),
            ),
          { signal: stopSignal.signal },
        )
        .then((counts) => {
          for (const [topic, count] of counts) partitionCounts.set(topic, count);
        })
        .catch((err: unknown) =>
          logger.warn(
            { err, topics: options.topics },
            'could not ensure topics exist (the producer will still try)',
          ),
        );
    })();
  }

  function pump(): void {
    while (inFlight === 0 && queue.length > 0) {
      const batch: Chunk[] = [];
      let bytes = 0;
      while (queue.length > 0 && (batch.length === 0 || bytes + queue[0]!.bytes <= maxRequestBytes)) {
        const chunk = queue.shift()!;
        if (chunk.state === 'cancelled') continue;
        chunk.state = 'sending';
        batch.push(chunk);
        bytes += chunk.bytes;
      }
      if (batch.length === 0) break;
      inFlight += 1;
      void produce(batch).finally(() => {
        inFlight -= 1;
        pump();
        if (inFlight === 0) idle?.();
      });
    }
  }

  async function produce(batch: Chunk[]): Promise<void> {
    const byTopic = new Map<string, { key: string | null; value: string; partition?: number }[]>();
    const stopTimer = metrics.produceSeconds.startTimer({ path: batch[0]!.path });
    try {
      for (const chunk of batch)
        for (const m of chunk.messages) {
          const list = byTopic.get(m.topic) ?? [];
          if (list.length === 0) byTopic.set(m.topic, list);
          if (!m.everyPartition) list.push({ key: m.key, value: m.value });
          else {
            const count = await partitionsOf(m.topic);
            for (let partition = 0; partition < count; partition++)
              list.push({ key: null, value: m.value, partition });
          }
        }
      await producer.sendBatch({
        acks: -1,
        compression: CompressionTypes.GZIP,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      stopTimer();
      for (const [topic, messages] of byTopic) metrics.sent.inc({ topic }, messages.length);
      for (const chunk of batch) chunk.resolve();
    } catch (err) {
      metrics.errors.inc({ stage: 'produce', type: (err as Error).name ?? 'Error' });
      const error = new AppError('KAUDIT_ERR_KAFKA', `Kafka did not acknowledge: ${(err as Error).message}`, {
        statusCode: 503,
        retriable: !isPoisonError(err),
        cause: err,
      });
      for (const chunk of batch) chunk.reject(error);
    }
  }

  function enqueue(
    messages: readonly OutMessage[],
    path: Chunk['path'],
  ): { chunks: Chunk[]; done: Promise<void> } {
    const chunks: Chunk[] = [];
    const promises: Promise<void>[] = [];
    let start = 0;
    let bytes = 0;
    const cut = (end: number) => {
      const slice = messages.slice(start, end);
      promises.push(
        new Promise<void>((resolve, reject) =>
          chunks.push({ messages: slice, bytes, path, state: 'queued', resolve, reject }),
        ),
      );
      start = end;
      bytes = 0;
    };
    for (let i = 0; i < messages.length; i++) {
      const size = messageBytes(messages[i]!);
      if (i > start && bytes + size > maxRequestBytes) cut(i);
      bytes += size;
    }
    if (start < messages.length) cut(messages.length);
    queue.push(...chunks);
    pump();
    return { chunks, done: Promise.all(promises).then(() => undefined) };
  }

  return {
    start() {
      stopped = false;
      connectLoop();
    },
    isConnected: () => connected,
    async send(messages, { path, timeoutMs }) {
      if (messages.length === 0) return;
      if (!connected || stopped)
        throw new AppError('KAUDIT_ERR_KAFKA', 'not connected to Kafka', {
          statusCode: 503,
          retriable: true,
        });
      const { chunks, done } = enqueue(messages, path);
      if (timeoutMs === undefined) return done;
      // The losing promise must not surface as an unhandled rejection.
      done.catch(() => undefined);
      await withTimeout(done, timeoutMs, () => {
        const error = new AppError('KAUDIT_ERR_KAFKA', `Kafka did not acknowledge within ${timeoutMs} ms`, {
          statusCode: 503,
          retriable: true,
        });
        for (const chunk of chunks)
          if (chunk.state === 'queued') {
            chunk.state = 'cancelled';
            chunk.reject(error);
          }
        throw error;
      });
    },
    async stop(timeoutMs = 10_000) {
      stopped = true;
      stopSignal.abort();
      if (inFlight > 0 || queue.some((chunk) => chunk.state === 'queued')) {
        // Past the timeout, what is still in flight is abandoned: stopping must not hang.
        await withTimeout(
          new Promise<void>((resolve) => {
            idle = resolve;
          }),
          timeoutMs,
          () => undefined,
        );
      }
      connected = false;
      await producer.disconnect();
    },
  };
}

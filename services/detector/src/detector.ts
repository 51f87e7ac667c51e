import { decodeEnvelope, type Finding } from '@kaudit/audit-schema';
import { serially } from '@kaudit/common';
import type { Policy } from '@kaudit/detection';
import type { Liveness, Logger, Startup } from '@kaudit/service-kit';
import {
  AppError,
  buildDeadLetter,
  createStartup,
  DEFAULT_STARTUP_TIMEOUT_MS,
  deadLetterMessage,
  logConsumerCrash,
} from '@kaudit/service-kit';
import type { Consumer, EachBatchPayload, Kafka, Message, Producer } from 'kafkajs';
import { changedStateMessages } from './changelog';
import { createCommitQueue, type Work } from './commit-queue';
import type { DetectorMetrics } from './metrics';
import { createPartitions } from './partitions';
import { ensureDetectorTopics } from './topics';
import { createTransactionCommit, errorType, stateChunkBytes } from './transaction';

export interface DetectorOptions {
  eventsTopic: string;
  alertsTopic: string;
  dlqTopic: string;
  stateTopic: string;
  groupId: string;
  instanceId: string;
  idleFlushMs: number;
  transactionTimeoutMs: number;
  sessionTimeoutMs: number;
  /** Most bytes fetched per partition per batch; default 8 MiB. */
  maxBatchBytes?: number;
  /**
   * How long the broker may hold a fetch to fill a batch (default 0: answer as soon as anything is
   * there). Each batch ends in a transaction that writes the state of every identity it touched, so
   * at high rates larger batches write each identity once for many of its events (DETECTOR_BATCH_WAIT_MS).
   */
  batchWaitMs?: number;
  /** Partitions whose batches are processed while another's transaction is in flight (default 4). */
  partitionsConsumedConcurrently?: number;
  /** Read the events topic from the beginning when the group has no committed offset (default true). */
  fromBeginning?: boolean;
}

export interface Detector {
  start(): Promise<void>;
  /** Graceful: finishes the batch in flight (its transaction commits), leaves the group, disconnects. */
  stop(): Promise<void>;
  ready(): boolean;
  stats(): { events: number; findings: number; partitions: number[] };
}

const METRICS_REFRESH_MS = 15_000;
const YIELD_EVERY_MESSAGES = 1000;

/**
 * The detector's consumer loop. Each batch of one events partition runs through that partition's
 * engine, then ONE Kafka transaction carries the findings (alerts topic, key = finding id), the state
 * the batch changed (changelog partition = events partition) and the consumer offset. Either all three
 * commit or none does, so a crash at any point replays the batch against the state as it was before
 * it: no baseline lost, no finding repeated (read-committed consumers), none missed.
 */
export function createDetector(deps: {
  kafka: Kafka;
  logger: Logger;
  metrics: DetectorMetrics;
  policy: Policy;
  options: DetectorOptions;
  /** Retries start-up steps against a broker still coming up (default: KAFKA_STARTUP_TIMEOUT's 2 min). */
  startup?: Startup;
  /** The crash policy: a consumer crash kafkajs will not restart makes the process dead (liveness.ts). */
  liveness?: Liveness;
}): Detector {
  const { kafka, metrics, policy, options } = deps;
  const logger = deps.logger.child({ component: 'detector' });
  let consumer: Consumer | undefined;
  let producer: Producer | undefined;
  let joined = false;
  let stopping = false;
  let flushTimer: NodeJS.Timeout | undefined;
  let lastMetricsRefresh = 0;
  /** Set by start() from the state topic's max.message.bytes. */
  let chunkBytes = stateChunkBytes(1024 * 1024);
  const totals = { events: 0, findings: 0 };
  const topics = {
    eventsTopic: options.eventsTopic,
    alertsTopic: options.alertsTopic,
    dlqTopic: options.dlqTopic,
    stateTopic: options.stateTopic,
  };
  const partitions = createPartitions({
    kafka,
    policy,
    logger,
    metrics,
    stateTopic: options.stateTopic,
    groupId: options.groupId,
  });
  /** The producer of every transaction (start() connects the first; a failed abort gets a new one). */
  const transactionalProducer = () =>
    kafka.producer({
      transactionalId: `${options.groupId}-${options.instanceId}`,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: options.transactionTimeoutMs,
      // Right after a commit the coordinator is still writing its markers, and the next transaction's
      // first AddPartitionsToTxn is refused with CONCURRENT_TRANSACTIONS. kafkajs retries the send
      // after initialRetryTime (300 ms by default, then doubling): with small batches that wait was
      // most of each batch's time (bench:e2e). The Java client retries this case after 20 ms.
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 20, maxRetryTime: 5000 },
    });

  // Batches and idle flushes share the transactional producer: one transaction at a time, grouped.
  const queue = createCommitQueue(
    createTransactionCommit({
      producer: () => producer!,
      replaceProducer: async () => {
        // Not awaited: a producer whose broker went away must not hold up the new one (which fences it).
        void producer
          ?.disconnect()
          .catch((err: unknown) => logger.warn({ err }, 'old producer disconnect failed'));
        producer = transactionalProducer();
        await producer.connect();
      },
      logger,
      metrics,
      topics,
      groupId: options.groupId,
      stateChunkBytes: () => chunkBytes,
      onCommitted: (findings) => {
        totals.findings += findings.length;
      },
    }),
  );

  /** Commits `work` of `numbers`; on failure those partitions' engines are dropped (then restored). */
  const submit = (numbers: number[], work: Work): Promise<void> => {
    const done = queue.submit(work);
    const settled = done.then(
      () => undefined,
      () => {
        for (const number of numbers) partitions.drop(number);
      },
    );
    for (const number of numbers) {
      const partition = partitions.held(number);
      if (!partition) continue;
      partition.inFlight = settled;
      void settled.then(() => {
        if (partition.inFlight === settled) partition.inFlight = undefined;
      });
    }
    return done;
  };

  /** Batches are processed one at a time, in the order they came (handleBatch). */
  const oneAtATime = serially();

  const handleBatch = async ({ batch, resolveOffset, heartbeat }: EachBatchPayload) => {
    if (batch.messages.length === 0) return;
    const started = Date.now();
    let partition = await partitions.get(batch.partition, heartbeat);
    // An idle flush of this partition may still be committing: wait, since its failure drops the engine.
    while (partition.inFlight) {
      await partition.inFlight;
      partition = await partitions.get(batch.partition, heartbeat);
    }
    const findings: Finding[] = [];
    const deadLetters: Message[] = [];
    partition.processing = true;
    try {
      // One partition's batch at a time: the first one done starts its transaction while the next is
      // processed, instead of all of them finishing together and their transactions queueing after.
      await oneAtATime(async () => {
        for (let i = 0; i < batch.messages.length; i++) {
          // Let the transaction in flight (another partition's) take its next round trip meanwhile.
          if (i > 0 && i % YIELD_EVERY_MESSAGES === 0) await new Promise(setImmediate);
          const message = batch.messages[i]!;
          const decoded = decodeEnvelope(message.value);
          if (!decoded.ok) {
            deadLetters.push(deadLetter(message, batch.topic, batch.partition, decoded.reason));
            continue;
          }
          findings.push(...partition.engine.process(decoded.envelope));
        }
      });
    } finally {
      partition.processing = false;
    }
    const lastOffset = batch.messages[batch.messages.length - 1]!.offset;
    const processed = Date.now();
    const state = changedStateMessages(partition.engine, batch.partition, partition.sizes);
    const encoded = Date.now();
    partition.lastArrival = encoded;
    try {
      await submit([batch.partition], {
        findings,
        deadLetters,
        state,
        offsets: [{ partition: batch.partition, offset: (BigInt(lastOffset) + 1n).toString() }],
      });
      logger.debug(
        {
          partition: batch.partition,
          events: batch.messages.length,
          findings: findings.length,
          stateRecords: state.length,
          processMs: processed - started,
          stateMs: encoded - processed,
          commitMs: Date.now() - encoded,
        },
        'batch committed',
      );
    } catch (err) {
      metrics.errors.inc({ stage: 'transaction', type: errorType(err) });
      throw new AppError('KAUDIT_ERR_KAFKA', `committing partition ${batch.partition} failed`, {
        retriable: true,
        cause: err,
      });
    }
    if (deadLetters.length > 0) metrics.deadLettered.inc({ reason: 'invalid_envelope' }, deadLetters.length);
    resolveOffset(lastOffset);
    totals.events += batch.messages.length;
    metrics.eventsReceived.inc(batch.messages.length);
    metrics.consumerLag.set({ partition: String(batch.partition) }, Number(batch.offsetLag()));
    metrics.batchSeconds.observe((Date.now() - started) / 1000);
    await heartbeat();
  };

  /** Quiet partitions: their clocks move on by the wall clock so open windows close and are reported. */
  const idleFlush = async () => {
    const now = Date.now();
    const findings: Finding[] = [];
    const state: Message[] = [];
    const touched: number[] = [];
    for (const [number, partition] of partitions.entries()) {
      const idleMs = now - partition.lastArrival;
      if (idleMs < options.idleFlushMs || partition.processing || partition.inFlight) continue;
      const closed = partition.engine.flush({ idleMs });
      const changed = changedStateMessages(partition.engine, number, partition.sizes);
      if (closed.length > 0 || changed.length > 0) {
        findings.push(...closed);
        state.push(...changed);
        touched.push(number);
      }
    }
    if (touched.length > 0) {
      try {
        await submit(touched, { findings, state, deadLetters: [], offsets: [] });
      } catch (err) {
        metrics.errors.inc({ stage: 'flush', type: errorType(err) });
        logger.error({ err, partitions: touched }, 'idle flush failed; partitions will be restored');
      }
    }
    if (now - lastMetricsRefresh >= METRICS_REFRESH_MS) {
      lastMetricsRefresh = now;
      partitions.refreshStateMetrics();
    }
  };

  return {
    async start() {
      const startup =
        deps.startup ?? createStartup({ logger: deps.logger, timeoutMs: DEFAULT_STARTUP_TIMEOUT_MS });
      const { stateMaxMessageBytes } = await startup.step('ensure topics', () =>
        ensureDetectorTopics(kafka, topics),
      );
      chunkBytes = stateChunkBytes(stateMaxMessageBytes);
      const transactional = transactionalProducer();
      producer = transactional;
      // InitProducerId fences an earlier incarnation with the same instance id and aborts its open transaction.
      await startup.step('connect the transactional producer', () => transactional.connect());
      const events = kafka.consumer({
        groupId: options.groupId,
        readUncommitted: false,
        sessionTimeout: options.sessionTimeoutMs,
        // Large fetches: the transaction per batch is the fixed cost, so the more events it covers the better.
        maxBytesPerPartition: options.maxBatchBytes ?? 8 * 1024 * 1024,
        maxBytes: 4 * (options.maxBatchBytes ?? 8 * 1024 * 1024),
        heartbeatInterval: Math.min(3000, Math.floor(options.sessionTimeoutMs / 3)),
        ...(options.batchWaitMs
          ? { minBytes: options.maxBatchBytes ?? 8 * 1024 * 1024, maxWaitTimeInMs: options.batchWaitMs }
          : {}),
      });
      consumer = events;
      deps.liveness?.watchConsumer(events, 'events consumer');
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        const assigned = payload.memberAssignment[options.eventsTopic] ?? [];
        partitions.assign(assigned);
        joined = true;
        logger.info({ partitions: assigned }, 'partitions assigned');
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        joined = false;
        logConsumerCrash(logger, payload);
      });
      await startup.step('connect the consumer', () => events.connect());
      await startup.step('subscribe to the events topic', () =>
        events.subscribe({ topic: options.eventsTopic, fromBeginning: options.fromBeginning ?? true }),
      );
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        // While one partition's transaction is in flight, the next partitions' batches are processed.
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 4,
        eachBatch: handleBatch,
      });
      flushTimer = setInterval(
        () => void idleFlush().catch((err: unknown) => logger.error({ err }, 'idle flush failed')),
        Math.min(options.idleFlushMs, 5000),
      );
      flushTimer.unref();
      logger.info({ topic: options.eventsTopic, groupId: options.groupId }, 'detector started');
    },

    async stop() {
      stopping = true;
      if (flushTimer) clearInterval(flushTimer);
      await consumer?.disconnect();
      await queue.idle();
      await producer?.disconnect();
      logger.info(totals, 'detector stopped');
    },

    ready: () => joined && !stopping,

    stats: () => ({ ...totals, partitions: partitions.numbers() }),
  };
}

function deadLetter(
  message: { key: Buffer | null; value: Buffer | null; offset: string },
  topic: string,
  partition: number,
  reason: string,
): Message {
  let raw: unknown = message.value?.toString('utf8') ?? null;
  try {
    raw = JSON.parse(String(raw));
  } catch {
    // keep the text as it was
  }
  const letter = buildDeadLetter({
    source: 'detector',
    reason,
    topic,
    partition,
    offset: message.offset,
    raw,
  });
  return deadLetterMessage(letter, { key: message.key });
}

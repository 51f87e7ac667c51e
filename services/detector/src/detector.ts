import type { Finding } from '@kaudit/audit-schema';
import { createEngine, type Engine, type Policy } from '@kaudit/detection';
import type { Liveness, Logger, Startup } from '@kaudit/service-kit';
import {
  AppError,
  buildDeadLetter,
  createStartup,
  DEFAULT_STARTUP_TIMEOUT_MS,
  deadLetterMessage,
  ensureTopics,
} from '@kaudit/service-kit';
import type { Consumer, EachBatchPayload, Kafka, Message, Producer } from 'kafkajs';
import { changedStateMessages, type PartitionState, readChangelog } from './changelog';
import { createCommitQueue, type Work } from './commit-queue';
import { decodeEnvelope } from './decode-envelope';
import type { DetectorMetrics } from './metrics';

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

interface Partition {
  engine: Engine;
  sizes: Map<string, number>;
  /** Wall-clock time of the last message, for the idle flush. */
  lastArrival: number;
  /**
   * The transaction carrying this partition's last processed work, until it settles. No further work is
   * computed from the engine before then: if it fails, the engine is dropped and restored.
   */
  inFlight?: Promise<void>;
  /** A batch is being run through the engine (it yields to the event loop now and then). */
  processing?: boolean;
}

/** State records are chunked so no record batch approaches the broker's message.max.bytes. */
const MAX_SEND_BYTES = 512 * 1024;
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
  const partitions = new Map<number, Partition>();
  const restoring = new Map<number, Promise<PartitionState>>();
  let consumer: Consumer | undefined;
  let producer: Producer | undefined;
  let joined = false;
  let stopping = false;
  let flushTimer: NodeJS.Timeout | undefined;
  let lastMetricsRefresh = 0;
  const totals = { events: 0, findings: 0 };

  const restore = (wanted: number[]): Promise<Map<number, PartitionState>> => {
    const started = Date.now();
    return readChangelog({
      kafka,
      topic: options.stateTopic,
      partitions: wanted,
      groupPrefix: options.groupId,
      logger,
    }).then((states) => {
      metrics.restoreSeconds.observe((Date.now() - started) / 1000);
      for (const [partition, state] of states) {
        logger.info(
          { partition, identities: Object.keys(state.state.identities).length, ms: Date.now() - started },
          'partition state restored',
        );
      }
      return states;
    });
  };

  const startRestore = (wanted: number[]) => {
    const all = restore(wanted);
    for (const partition of wanted) {
      restoring.set(
        partition,
        all.then((states) => states.get(partition)!),
      );
    }
    // A failed restore is retried by the batch that needs it.
    all.catch((err: unknown) => {
      metrics.errors.inc({ stage: 'restore', type: errorType(err) });
      logger.error({ err, partitions: wanted }, 'restoring partition state failed');
      for (const partition of wanted) restoring.delete(partition);
    });
  };

  const partitionFor = async (partition: number, heartbeat: () => Promise<void>): Promise<Partition> => {
    const existing = partitions.get(partition);
    if (existing) return existing;
    if (!restoring.has(partition)) startRestore([partition]);
    const pending = restoring.get(partition)!;
    // kafkajs heartbeats between batches only: keep the membership alive while the changelog is read.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 3000);
    try {
      const restored = await pending;
      const created: Partition = {
        engine: createEngine({ policy, state: restored.state }),
        sizes: restored.sizes,
        lastArrival: Date.now(),
      };
      partitions.set(partition, created);
      return created;
    } finally {
      clearInterval(beat);
      restoring.delete(partition);
    }
  };

  /** Forgets in-memory state that may be ahead of what committed; it is restored from the changelog. */
  const drop = (partition: number) => {
    partitions.delete(partition);
    restoring.delete(partition);
    for (const gauge of [metrics.stateKeys, metrics.stateBytes, metrics.consumerLag]) {
      gauge.remove({ partition: String(partition) });
    }
  };

  const commit = async (work: Work) => {
    const tx = await producer!.transaction();
    try {
      const batches: Array<{ topic: string; messages: Message[] }> = [];
      if (work.findings.length > 0) {
        batches.push({
          topic: options.alertsTopic,
          messages: work.findings.map((f) => ({ key: f.id, value: JSON.stringify(f) })),
        });
      }
      if (work.deadLetters.length > 0) batches.push({ topic: options.dlqTopic, messages: work.deadLetters });
      for (const chunk of chunkBySize(work.state, MAX_SEND_BYTES))
        batches.push({ topic: options.stateTopic, messages: chunk });
      // Uncompressed: gzip in kafkajs costs more CPU per batch than the transaction itself (see README).
      for (const batch of batches) await tx.send(batch);
      if (work.offsets.length > 0) {
        await tx.sendOffsets({
          consumerGroupId: options.groupId,
          topics: [{ topic: options.eventsTopic, partitions: work.offsets }],
        });
      }
      await tx.commit();
    } catch (err) {
      await tx
        .abort()
        .catch((abortError: unknown) => logger.warn({ err: abortError }, 'transaction abort failed'));
      throw err;
    }
    for (const finding of work.findings)
      metrics.findings.inc({ rule: finding.rule, severity: finding.severity });
    totals.findings += work.findings.length;
  };
  // Batches and idle flushes share the transactional producer: one transaction at a time, grouped.
  const queue = createCommitQueue(commit);

  /** Commits `work` of `numbers`; on failure those partitions' engines are dropped (then restored). */
  const submit = (numbers: number[], work: Work): Promise<void> => {
    const done = queue.submit(work);
    const settled = done.then(
      () => undefined,
      () => {
        for (const number of numbers) drop(number);
      },
    );
    for (const number of numbers) {
      const partition = partitions.get(number);
      if (!partition) continue;
      partition.inFlight = settled;
      void settled.then(() => {
        if (partition.inFlight === settled) partition.inFlight = undefined;
      });
    }
    return done;
  };

  const handleBatch = async ({ batch, resolveOffset, heartbeat }: EachBatchPayload) => {
    if (batch.messages.length === 0) return;
    const started = Date.now();
    let partition = await partitionFor(batch.partition, heartbeat);
    // An idle flush of this partition may still be committing: wait, since its failure drops the engine.
    while (partition.inFlight) {
      await partition.inFlight;
      partition = await partitionFor(batch.partition, heartbeat);
    }
    const findings: Finding[] = [];
    const deadLetters: Message[] = [];
    partition.processing = true;
    try {
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
    for (const [number, partition] of partitions) {
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
    if (now - lastMetricsRefresh >= METRICS_REFRESH_MS) refreshStateMetrics(now);
  };

  const refreshStateMetrics = (now: number) => {
    lastMetricsRefresh = now;
    let pending = 0;
    for (const [number, partition] of partitions) {
      const stats = partition.engine.stats();
      pending += stats.pending;
      const label = { partition: String(number) };
      metrics.stateKeys.set(label, stats.identities + stats.clusters);
      let bytes = 0;
      for (const size of partition.sizes.values()) bytes += size;
      metrics.stateBytes.set(label, bytes);
    }
    metrics.pendingEvents.set(pending);
  };

  const ensureStateTopic = async () => {
    await ensureTopics(kafka, [
      { topic: options.eventsTopic },
      { topic: options.alertsTopic },
      { topic: options.dlqTopic },
    ]);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const count = async (topic: string) =>
        (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions.length ?? 0;
      const events = await count(options.eventsTopic);
      await ensureTopics(kafka, [
        {
          topic: options.stateTopic,
          numPartitions: events,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'max.message.bytes', value: String(8 * 1024 * 1024) },
          ],
        },
      ]);
      const state = await count(options.stateTopic);
      if (state !== events) {
        throw new AppError(
          'KAUDIT_ERR_CONFIG',
          `state topic ${options.stateTopic} has ${state} partitions but ${options.eventsTopic} has ${events}: they must match (state of events partition p lives in state partition p)`,
        );
      }
    } finally {
      await admin.disconnect();
    }
  };

  return {
    async start() {
      const startup =
        deps.startup ?? createStartup({ logger: deps.logger, timeoutMs: DEFAULT_STARTUP_TIMEOUT_MS });
      await startup.step('ensure topics', ensureStateTopic);
      const transactional = kafka.producer({
        transactionalId: `${options.groupId}-${options.instanceId}`,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: options.transactionTimeoutMs,
      });
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
      });
      consumer = events;
      deps.liveness?.watchConsumer(events, 'events consumer');
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        const assigned = payload.memberAssignment[options.eventsTopic] ?? [];
        for (const number of [...partitions.keys()]) if (!assigned.includes(number)) drop(number);
        const fresh = assigned.filter((p) => !partitions.has(p) && !restoring.has(p));
        if (fresh.length > 0) startRestore(fresh);
        joined = true;
        logger.info({ partitions: assigned }, 'partitions assigned');
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        joined = false;
        logger.error({ err: payload.error, restart: payload.restart }, 'consumer crashed');
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

    stats: () => ({ ...totals, partitions: [...partitions.keys()].sort((a, b) => a - b) }),
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

function* chunkBySize(messages: Message[], maxBytes: number): Generator<Message[]> {
  let chunk: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size =
      (typeof message.value === 'string' ? message.value.length : (message.value?.length ?? 0)) + 64;
    if (chunk.length > 0 && bytes + size > maxBytes) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(message);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

function errorType(err: unknown): string {
  return (
    (err as { type?: string; code?: string }).type ??
    (err as { code?: string }).code ??
    (err as Error).name ??
    'unknown'
  );
}

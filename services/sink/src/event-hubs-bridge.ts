import { type DecodedItem, decodeAuditText } from '@kaudit/audit-schema';
import { backoffDelayMs, sleep } from '@kaudit/common';
import type { Logger } from '@kaudit/service-kit';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { createBatch, type IngestOptions } from './ingest';
import type { SinkMetrics } from './metrics';
import type { Sender } from './producer';
import type { OutMessage } from './spool-format';

/**
 * AKS (ADR 0009): diagnostic settings send `kube-audit` / `kube-audit-admin` to an Event Hub, whose
 * Kafka endpoint this consumes as an ordinary Kafka topic. Each hub message is
 * `{"records":[{"resourceId":"…/MANAGEDCLUSTERS/<name>","properties":{"log":"<event>"}}]}`: unwrapped
 * by audit-schema (the one Event Hubs unwrap), redacted and enveloped by the sink's own createBatch,
 * produced to k8s-audit.events through the sink's producer, keyed by the cluster the record names
 * (else SINK_EVENTHUB_CLUSTER_NAME).
 *
 * The hub's offsets are committed only once kaudit's Kafka acknowledged every message produced from
 * the batch: while it does not, the batch is retried (with backoff, heartbeating) and nothing is
 * committed, so a crash or a stop re-reads it; the hub's retention (1-90 days) is the spool here.
 * At least once: a crash between Kafka's ack and the commit re-sends the batch (content-derived ids
 * downstream make that harmless in Elasticsearch).
 */
export interface EventHubsBridgeDeps {
  /** A client of the hub's Kafka endpoint (the SINK_EVENTHUB_* settings). */
  source: Kafka;
  topic: string;
  groupId: string;
  /** Cluster for records whose resourceId names none. */
  clusterName: string;
  sender: Pick<Sender, 'send' | 'isConnected'>;
  ingest: IngestOptions;
  logger: Logger;
  metrics: SinkMetrics;
  /** How long one produce attempt may wait for Kafka's acknowledgement. */
  sendTimeoutMs?: number;
}

export interface EventHubsBridge {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Hub messages whose envelopes Kafka acknowledged and whose offsets were committed. */
  committed(): number;
}

/** Hub messages -> the messages to produce, one createBatch per cluster (keys and dead letters per cluster). */
export function bridgeMessages(
  values: ReadonlyArray<Buffer | null>,
  fallbackCluster: string,
  ingest: IngestOptions,
  receivedAt: string,
): { messages: OutMessage[]; accepted: number; rejected: number; redacted: number; truncated: number } {
  const byCluster = new Map<string, DecodedItem[]>();
  for (const [index, value] of values.entries()) {
    const items =
      value === null
        ? []
        : decodeAuditText(value.toString('utf8')).map((item) => ({ ...item, line: index + 1 }));
    for (const item of items) {
      const cluster = item.cluster ?? fallbackCluster;
      const list = byCluster.get(cluster) ?? [];
      list.push(item);
      byCluster.set(cluster, list);
    }
  }
  const out = { messages: [] as OutMessage[], accepted: 0, rejected: 0, redacted: 0, truncated: 0 };
  for (const [cluster, items] of byCluster) {
    const batch = createBatch(cluster, receivedAt, ingest);
    for (const item of items) batch.add(item);
    out.messages.push(...batch.result.messages);
    out.accepted += batch.result.accepted;
    out.rejected += batch.result.rejected;
    out.redacted += batch.result.redacted;
    out.truncated += batch.result.truncated;
  }
  return out;
}

export function createEventHubsBridge(deps: EventHubsBridgeDeps): EventHubsBridge {
  const logger = deps.logger.child({ component: 'eventhubs-bridge', topic: deps.topic });
  const stopSignal = new AbortController();
  let consumer: Consumer | undefined;
  let committed = 0;
  let stopping = false;

  const handleBatch = async ({ batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload) => {
    if (batch.messages.length === 0) return;
    const out = bridgeMessages(
      batch.messages.map((m) => m.value),
      deps.clusterName,
      deps.ingest,
      new Date().toISOString(),
    );
    deps.metrics.received.inc(out.accepted + out.rejected);
    for (let attempt = 0; ; attempt++) {
      if (!isRunning() || isStale() || stopping)
        // Not acknowledged: leave the offsets uncommitted; the next owner re-reads the batch.
        throw new Error('bridge stopping before Kafka acknowledged the batch');
      try {
        await deps.sender.send(out.messages, { path: 'bridge', timeoutMs: deps.sendTimeoutMs ?? 10_000 });
        break;
      } catch (err) {
        deps.metrics.errors.inc({ stage: 'bridge', type: 'kafka' });
        const waitMs = backoffDelayMs(attempt, { initialDelayMs: 200, maxDelayMs: 10_000 });
        logger.warn(
          { err, attempt, waitMs, partition: batch.partition },
          'Kafka did not take the batch; retrying, hub offsets not committed',
        );
        await heartbeat().catch(() => undefined);
        await sleep(waitMs, stopSignal.signal).catch(() => undefined);
      }
    }
    const last = batch.messages[batch.messages.length - 1]!;
    await consumer!.commitOffsets([
      { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() },
    ]);
    resolveOffset(last.offset);
    committed += batch.messages.length;
    deps.metrics.accepted.inc(out.accepted);
    deps.metrics.rejected.inc(out.rejected);
    deps.metrics.redacted.inc(out.redacted);
    deps.metrics.truncated.inc(out.truncated);
    await heartbeat();
  };

  return {
    async start() {
      consumer = deps.source.consumer({ groupId: deps.groupId, retry: { retries: 10 } });
      await consumer.connect();
      await consumer.subscribe({ topic: deps.topic, fromBeginning: true });
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: handleBatch });
      logger.info({ groupId: deps.groupId }, 'consuming the Event Hub');
    },
    async stop() {
      stopping = true;
      stopSignal.abort();
      await consumer?.disconnect();
    },
    committed: () => committed,
  };
}

import type { Logger } from '@kaudit/service-kit';
import type { Message, Producer } from 'kafkajs';
import type { Work } from './commit-queue';
import type { DetectorMetrics } from './metrics';

/** The most bytes of state records per send (a few sends per transaction: each is a round trip). */
const MAX_SEND_BYTES = 2 * 1024 * 1024;

/**
 * State records are sent in chunks of at most this many bytes, so no record batch comes near the state
 * topic's max.message.bytes (ours is 8 MiB; a topic made beforehand may have the broker's 1 MiB): a
 * quarter of it, because a chunk is measured in UTF-16 code units and each may take up to 3 bytes in
 * UTF-8. Larger chunks mean fewer round trips in each transaction: 2 MiB rather than 512 KiB made
 * bench:detector 10-25 % faster (2026-12-06).
 */
export function stateChunkBytes(stateMaxMessageBytes: number): number {
  return Math.max(64 * 1024, Math.min(MAX_SEND_BYTES, Math.floor(stateMaxMessageBytes / 4)));
}

/**
 * One Kafka transaction for one unit of work (commit-queue.ts groups them): the findings (alerts topic,
 * key = finding id), the dead letters, the state the work changed and the consumer offsets. Either all
 * commit or none does; on failure the transaction is aborted and the error rethrown, so the caller drops
 * the partitions' engines and restores them from the changelog.
 */
export function createTransactionCommit(deps: {
  /** The transactional producer, connected by start(). */
  producer: () => Producer;
  /**
   * A fresh, connected transactional producer in place of one whose transaction state is lost (its
   * abort failed): kafkajs keeps such a producer "in a transaction" for good, refusing every later one.
   */
  replaceProducer: () => Promise<void>;
  logger: Logger;
  metrics: DetectorMetrics;
  topics: { eventsTopic: string; alertsTopic: string; dlqTopic: string; stateTopic: string };
  groupId: string;
  /** Bytes of state records per send (stateChunkBytes of the state topic's max.message.bytes). */
  stateChunkBytes: () => number;
  /** After a commit: the findings it carried. */
  onCommitted(findings: Work['findings']): void;
}): (work: Work) => Promise<void> {
  const { topics, logger, metrics } = deps;
  let replace = false;
  return async (work) => {
    // After a failed abort (Kafka away, or the coordinator aborted the transaction itself on
    // transactionTimeout and bumped the epoch while Kafka restarted): a new producer's InitProducerId
    // fences the old epoch and aborts whatever it left open. If that fails too, it is tried again next time.
    if (replace) {
      logger.warn('replacing the transactional producer: the last transaction could not be aborted');
      await deps.replaceProducer();
      replace = false;
    }
    let tx: Awaited<ReturnType<Producer['transaction']>>;
    try {
      tx = await deps.producer().transaction();
    } catch (err) {
      replace = true;
      throw err;
    }
    try {
      const batches: Array<{ topic: string; messages: Message[] }> = [];
      if (work.findings.length > 0) {
        batches.push({
          topic: topics.alertsTopic,
          messages: work.findings.map((f) => ({ key: f.id, value: JSON.stringify(f) })),
        });
      }
      if (work.deadLetters.length > 0) batches.push({ topic: topics.dlqTopic, messages: work.deadLetters });
      for (const chunk of chunkBySize(work.state, deps.stateChunkBytes()))
        batches.push({ topic: topics.stateTopic, messages: chunk });
      // Uncompressed: gzip in kafkajs costs more CPU per batch than the transaction itself (see README).
      for (const batch of batches) await tx.send(batch);
      if (work.offsets.length > 0) {
        await tx.sendOffsets({
          consumerGroupId: deps.groupId,
          topics: [{ topic: topics.eventsTopic, partitions: work.offsets }],
        });
      }
      await tx.commit();
    } catch (err) {
      await tx.abort().catch((abortError: unknown) => {
        replace = true;
        logger.warn(
          { err: abortError },
          'transaction abort failed; the next transaction uses a new producer',
        );
      });
      throw err;
    }
    for (const finding of work.findings)
      metrics.findings.inc({ rule: finding.rule, severity: finding.severity });
    deps.onCommitted(work.findings);
  };
}

export function* chunkBySize(messages: Message[], maxBytes: number): Generator<Message[]> {
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

/** The `type` label of errors{stage,type}: kafkajs error type, Node error code, or the error's name. */
export function errorType(err: unknown): string {
  return (
    (err as { type?: string; code?: string }).type ??
    (err as { code?: string }).code ??
    (err as Error).name ??
    'unknown'
  );
}

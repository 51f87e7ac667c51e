import { randomUUID } from 'node:crypto';
import type { ClusterState, Engine, EngineState, IdentityState } from '@kaudit/detection';
import { decodeIdentity, encodeIdentity } from '@kaudit/detection';
import { type Logger, readToEnd } from '@kaudit/service-kit';
import type { Kafka, Message } from 'kafkajs';

/**
 * The detector's state on Kafka: one compacted topic with as many partitions as the events topic. The
 * state of events partition p lives in changelog partition p, one record per identity (key "i:" +
 * partition key, encoded by state-codec.ts) and one per cluster ("c:" + cluster, JSON); a forgotten
 * identity is a tombstone.
 */
const IDENTITY = 'i:';
const CLUSTER = 'c:';

export interface PartitionState {
  state: Partial<Omit<EngineState, 'version'>> & {
    clusters: Record<string, ClusterState>;
    identities: Record<string, IdentityState>;
  };
  /** Serialised bytes per key, for the state-size metric. */
  sizes: Map<string, number>;
}

export function emptyPartitionState(): PartitionState {
  return { state: { clusters: {}, identities: {} }, sizes: new Map() };
}

/** The records that persist what changed in `engine` since the last call, for changelog partition p. */
export function changedStateMessages(
  engine: Engine,
  partition: number,
  sizes: Map<string, number>,
): Message[] {
  const dirty = engine.takeDirty();
  const messages: Message[] = [];
  for (const key of dirty.identities) {
    const state = engine.snapshot(key);
    const value = state === undefined ? null : encodeIdentity(state);
    if (value === null) sizes.delete(IDENTITY + key);
    else sizes.set(IDENTITY + key, value.length);
    messages.push({ key: IDENTITY + key, value, partition });
  }
  for (const cluster of dirty.clusters) {
    const value = JSON.stringify(engine.snapshotCluster(cluster));
    sizes.set(CLUSTER + cluster, value.length);
    messages.push({ key: CLUSTER + cluster, value, partition });
  }
  return messages;
}

/** Applies one changelog record (last write wins; null deletes). */
export function applyStateRecord(target: PartitionState, key: string, value: Buffer | null): void {
  if (key.startsWith(IDENTITY)) {
    const id = key.slice(IDENTITY.length);
    if (value === null) {
      delete target.state.identities[id];
      target.sizes.delete(key);
    } else {
      target.state.identities[id] = decodeIdentity(value.toString('utf8'));
      target.sizes.set(key, value.length);
    }
  } else if (key.startsWith(CLUSTER) && value !== null) {
    target.state.clusters[key.slice(CLUSTER.length)] = JSON.parse(value.toString('utf8')) as ClusterState;
    target.sizes.set(key, value.length);
  }
}

/**
 * Reads changelog partitions from the beginning to their end (read committed: only state whose
 * transaction committed, i.e. whose findings and offsets committed with it). kafkajs has no manual
 * partition assignment, so a throwaway consumer group reads the topic and keeps the wanted partitions.
 */
export async function readChangelog(options: {
  kafka: Kafka;
  topic: string;
  partitions: readonly number[];
  groupPrefix: string;
  logger: Logger;
  timeoutMs?: number;
}): Promise<Map<number, PartitionState>> {
  const { kafka, topic, partitions, logger } = options;
  const result = new Map(partitions.map((p) => [p, emptyPartitionState()] as const));
  const timeoutMs = options.timeoutMs ?? 120_000;
  await readToEnd({
    kafka,
    topics: [topic],
    groupId: `${options.groupPrefix}-restore-${randomUUID()}`,
    consumer: { readUncommitted: false, allowAutoTopicCreation: false },
    wants: (_topic, partition) => result.has(partition),
    onMessage: (message, _topic, partition) => {
      if (message.key) applyStateRecord(result.get(partition)!, message.key.toString('utf8'), message.value);
    },
    timeoutMs,
    timeoutError: (behind) =>
      new Error(
        `changelog ${topic} partitions ${behind.map((key) => key.slice(topic.length + 1)).join(',')} not read within ${timeoutMs} ms`,
      ),
    deleteGroup: { logger },
  });
  return result;
}

import { createEngine, type Engine, type Policy } from '@kaudit/detection';
import type { Logger } from '@kaudit/service-kit';
import type { Kafka } from 'kafkajs';
import { type PartitionState, readChangelog } from './changelog';
import type { DetectorMetrics } from './metrics';
import { errorType } from './transaction';

export interface Partition {
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

export interface Partitions {
  /** The partition's engine, restored from the changelog first if this instance does not hold it. */
  get(partition: number, heartbeat: () => Promise<void>): Promise<Partition>;
  /** Forgets in-memory state that may be ahead of what committed; it is restored from the changelog. */
  drop(partition: number): void;
  /** A rebalance: drops partitions no longer assigned and starts restoring the new ones at once. */
  assign(assigned: number[]): void;
  /** The partition if this instance holds it now (no restore). */
  held(partition: number): Partition | undefined;
  entries(): IterableIterator<[number, Partition]>;
  numbers(): number[];
  /** State size gauges and pending events, refreshed now and then by the idle flush. */
  refreshStateMetrics(): void;
}

/**
 * The partitions this instance holds: one detection engine each, restored from the state changelog
 * (changelog.ts) on assignment, so a rebalance or a failed transaction loses nothing.
 */
export function createPartitions(deps: {
  kafka: Kafka;
  policy: Policy;
  logger: Logger;
  metrics: DetectorMetrics;
  stateTopic: string;
  groupId: string;
}): Partitions {
  const { kafka, policy, logger, metrics } = deps;
  const partitions = new Map<number, Partition>();
  const restoring = new Map<number, Promise<PartitionState>>();

  const restore = (wanted: number[]): Promise<Map<number, PartitionState>> => {
    const started = Date.now();
    return readChangelog({
      kafka,
      topic: deps.stateTopic,
      partitions: wanted,
      groupPrefix: deps.groupId,
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

  const drop = (partition: number) => {
    partitions.delete(partition);
    restoring.delete(partition);
    for (const gauge of [metrics.stateKeys, metrics.stateBytes, metrics.consumerLag]) {
      gauge.remove({ partition: String(partition) });
    }
  };

  return {
    async get(partition, heartbeat) {
      const existing = partitions.get(partition);
      if (existing) return existing;
      if (!restoring.has(partition)) startRestore([partition]);
      const pending = restoring.get(partition)!;
      // kafkajs heartbeats between batches only: keep the membership alive while the changelog is read.
      const beat = setInterval(() => void heartbeat().catch(() => undefined), 3000);
      try {
        const restored = await pending;
        const created: Partition = {
          // One engine per partition: it sees the identities keyed to it, and copies of the chain steps
          // of others that may empower them (the sink puts them here: audit-schema chain-copies.ts).
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
    },
    drop,
    assign(assigned) {
      for (const number of [...partitions.keys()]) if (!assigned.includes(number)) drop(number);
      const fresh = assigned.filter((p) => !partitions.has(p) && !restoring.has(p));
      if (fresh.length > 0) startRestore(fresh);
    },
    held: (partition) => partitions.get(partition),
    entries: () => partitions.entries(),
    numbers: () => [...partitions.keys()].sort((a, b) => a - b),
    refreshStateMetrics() {
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
    },
  };
}

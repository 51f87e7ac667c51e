interface PartitionState {
  pending: TrackedOffset[];
  committable?: bigint;
}

/** A message being worked on; acknowledge it with `ack(handle)`. */
export interface TrackedOffset {
  readonly partition: number;
  readonly offset: bigint;
  done: boolean;
  /** The partition state it belongs to: an ack after the partition was dropped changes nothing. */
  readonly owner: PartitionState;
}

/**
 * Which offset may be committed per partition: the end of the contiguous prefix of acknowledged
 * messages (hive `inflight.ts`, Vector end-to-end acknowledgements). A message is acknowledged when
 * every destination it was routed to has delivered it or dead-lettered it.
 */
export function createOffsetTracker() {
  const partitions = new Map<number, PartitionState>();
  let open = 0;

  function partitionState(partition: number): PartitionState {
    let state = partitions.get(partition);
    if (!state) {
      state = { pending: [] };
      partitions.set(partition, state);
    }
    return state;
  }

  return {
    /** Offsets of one partition must be tracked in increasing order (the order Kafka hands them out). */
    track(partition: number, offset: string): TrackedOffset {
      const owner = partitionState(partition);
      const handle: TrackedOffset = { partition, offset: BigInt(offset), done: false, owner };
      owner.pending.push(handle);
      open += 1;
      return handle;
    },

    ack(handle: TrackedOffset): void {
      if (handle.done || partitions.get(handle.partition) !== handle.owner) return;
      handle.done = true;
      open -= 1;
      const state = handle.owner;
      while (state.pending[0]?.done) {
        state.committable = state.pending.shift()!.offset + 1n;
      }
    },

    /** Offsets to commit (the next offset to read, as Kafka expects) that changed since the last call. */
    takeCommittable(): Array<{ partition: number; offset: string }> {
      const out: Array<{ partition: number; offset: string }> = [];
      for (const [partition, state] of partitions) {
        if (state.committable !== undefined) {
          out.push({ partition, offset: state.committable.toString() });
          state.committable = undefined;
        }
      }
      return out;
    },

    /** Puts back offsets whose commit failed, unless a newer one replaced them meanwhile. */
    restore(offsets: Array<{ partition: number; offset: string }>): void {
      for (const { partition, offset } of offsets) {
        const state = partitions.get(partition);
        if (state && state.committable === undefined) state.committable = BigInt(offset);
      }
    },

    /** Forgets a revoked partition: its unacknowledged messages will be read again by its next owner. */
    drop(partition: number): void {
      const state = partitions.get(partition);
      if (!state) return;
      open -= state.pending.filter((p) => !p.done).length;
      partitions.delete(partition);
    },

    partitions(): number[] {
      return [...partitions.keys()];
    },

    /** Messages tracked and not yet acknowledged. */
    inFlight(): number {
      return open;
    },
  };
}

export type OffsetTracker = ReturnType<typeof createOffsetTracker>;

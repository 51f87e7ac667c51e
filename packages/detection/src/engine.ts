import {
  type AuditEvent,
  type CHAIN_STEP_COPY,
  type Finding,
  partitionKey,
  type RuleId,
  ruleIds,
} from '@kaudit/audit-schema';
import { type IdentityState, newIdentityState, upgradeIdentityState } from './baseline';
import { createEvaluator } from './evaluate';
import type { Group } from './grouping';
import { type AddressSet, addressSet } from './identity';
import { type Policy, policyForCluster } from './policy';
import {
  type Arrival,
  type ArrivalQueue,
  advanceClock,
  type ClusterState,
  createArrivalQueue,
  createDueSchedule,
  insertSorted,
  mergeSteps,
  sortFindings,
} from './reorder';
import { observe } from './scope';

export type { ClusterState } from './reorder';

/** The whole state as JSON; the detector persists it per partition key (identities) and per cluster. */
export interface EngineState {
  version: 1;
  clusters: Record<string, ClusterState>;
  identities: Record<string, IdentityState>;
}

export interface EngineStats {
  events: number;
  /** Events that do not count: RequestReceived stages, unparseable times. */
  ignored: number;
  secretReads: number;
  /** Other stages of a secret read already counted. */
  duplicates: number;
  /** Arrived behind the watermark (processed at once, out of order). */
  late: number;
  /** So late (beyond eventTime.dedupRetention) that rules skip them; baselines still learn. */
  tooLate: number;
  /** A finding whose window was already reported: not reported twice. */
  suppressed: number;
  /** Copies of chain steps from other partitions (Envelope.copy), not counted in events. */
  copies: number;
  /** Findings reported (their first revision). */
  findings: number;
  /** Later revisions of findings already reported (same id, more evidence). */
  updates: number;
  findingsByRule: Record<RuleId, number>;
  identities: number;
  clusters: number;
  pending: number;
  openGroups: number;
}

export interface EngineInput {
  cluster: string;
  event: AuditEvent;
  /**
   * A chain step's copy, put on this partition by the sink (audit-schema chain-copies.ts): recorded as a
   * step on arrival, so that a later Secret read here links to it; not an event of this partition.
   */
  copy?: typeof CHAIN_STEP_COPY;
}

export interface Engine {
  /**
   * Takes one event (an Envelope or { cluster, event }); returns the findings (and later revisions of
   * findings) made on the requests the watermark passed, and those whose window it closed.
   */
  process(input: EngineInput): Finding[];
  /**
   * Without options (end of input): processes every buffered request and closes every window.
   * With idleMs (a service whose partition went quiet): moves every cluster's clock that far past its
   * newest event and emits what that closes.
   */
  flush(options?: { idleMs?: number }): Finding[];
  snapshot(): EngineState;
  snapshot(key: string): IdentityState | undefined;
  snapshotCluster(cluster: string): ClusterState | undefined;
  /** Merges persisted state in (clusters: earliest first event, latest clock; identities: replaced). */
  restore(state: Partial<Omit<EngineState, 'version'>>): void;
  /** Partition keys and clusters changed since the last call (undefined snapshot = deleted: tombstone). */
  takeDirty(): { identities: string[]; clusters: string[] };
  stats(): EngineStats;
}

const SWEEP_EVERY_EVENTS = 65_536;

/** An identity's open finding groups (a closed one leaves its rule's key set to undefined: evaluate.ts). */
function openGroups(state: IdentityState): Group[] {
  return Object.values(state.groups).filter((group): group is Group => group !== undefined);
}

/**
 * The engine: the state lifecycle (identities and cluster clocks, restore, snapshots, dirty keys for the
 * detector's changelog, idle sweep) around the reorder buffer (reorder.ts: requests held until the
 * watermark passes them) and evaluation (evaluate.ts: rules, allow-lists, grouping into findings).
 */
export function createEngine({ policy, state }: { policy: Policy; state?: Partial<EngineState> }): Engine {
  const clusters = new Map<string, ClusterState>();
  const identities = new Map<string, IdentityState>();
  /** Per cluster, its buffered requests in the order they are applied (reorder.ts). */
  const arrivals = new Map<string, ArrivalQueue>();
  /** Window ends: when an identity's open finding groups are due to close. */
  const windows = createDueSchedule();
  const arrivalsOf = (cluster: string): ArrivalQueue => {
    let queue = arrivals.get(cluster);
    if (!queue) {
      queue = createArrivalQueue();
      arrivals.set(cluster, queue);
    }
    return queue;
  };
  const dirtyIdentities = new Set<string>();
  const dirtyClusters = new Set<string>();
  const counters = {
    events: 0,
    ignored: 0,
    secretReads: 0,
    duplicates: 0,
    late: 0,
    tooLate: 0,
    suppressed: 0,
    copies: 0,
    findings: 0,
    updates: 0,
    pending: 0,
  };
  const findingsByRule = Object.fromEntries(ruleIds.map((id) => [id, 0])) as Record<RuleId, number>;
  const evaluator = createEvaluator({ policy, counters, findingsByRule });
  const proxies = new Map<string, AddressSet>();
  /** network.trustedProxies of a cluster (an overlay of policy.clusters may name its own). */
  const trustedProxiesOf = (cluster: string): AddressSet => {
    let set = proxies.get(cluster);
    if (!set) {
      set = addressSet(policyForCluster(policy, cluster).network.trustedProxies);
      proxies.set(cluster, set);
    }
    return set;
  };
  const { allowedLateness } = policy.eventTime;
  let sinceSweep = 0;

  /** Closes a key's windows ending by `upTo` and schedules it for the next window end. */
  const settle = (key: string, state: IdentityState, upTo: number, out: Finding[]) => {
    let next = Number.POSITIVE_INFINITY;
    for (const rule in state.groups) {
      const group = state.groups[rule as RuleId];
      if (group === undefined) continue;
      if (group.windowEnd <= upTo) evaluator.emit(state, group, out);
      else next = Math.min(next, group.windowEnd);
    }
    dirtyIdentities.add(key);
    if (next !== Number.POSITIVE_INFINITY) windows.schedule(state.cluster, key, next);
  };

  /** Identities touched by the drain in progress (reused: one drain per event). */
  const touched: Array<{ key: string; state: IdentityState }> = [];

  /**
   * Applies a cluster's buffered requests up to `upTo` in one event-time order across identities (so a
   * privilege step of one identity, chain.ts, is applied before a later request of another, whatever the
   * arrival order within the lateness), then closes the windows ending by then — after every request
   * up to `upTo` is in, so a window never closes before a request inside it that was already due.
   */
  const drain = (clusterName: string, upTo: number): Finding[] => {
    const out: Finding[] = [];
    const cluster = clusters.get(clusterName)!;
    const queue = arrivals.get(clusterName);
    touched.length = 0;
    if (queue) {
      for (let next = queue.takeDue(upTo); next !== undefined; next = queue.takeDue(upTo)) {
        const { state } = next;
        // The queue's order restricted to one identity is its pending order: this is its head.
        evaluator.apply(state, cluster, state.pending.shift()!, out);
        counters.pending -= 1;
        touched.push(next);
      }
    }
    for (const key of windows.due(clusterName, upTo)) {
      const state = identities.get(key);
      if (state) touched.push({ key, state });
    }
    for (const { key, state } of touched) settle(key, state, upTo, out);
    touched.length = 0;
    return out;
  };

  const sweep = () => {
    sinceSweep = 0;
    for (const [key, state] of identities) {
      const cluster = clusters.get(state.cluster);
      if (!cluster) continue;
      const idle = state.lastSeen < cluster.watermark - policy.baseline.identityRetention;
      if (idle && state.pending.length === 0 && openGroups(state).length === 0) {
        identities.delete(key);
        windows.forget(key);
        dirtyIdentities.add(key);
      }
    }
  };

  const restoreIdentity = (key: string, state: IdentityState) => {
    upgradeIdentityState(state);
    const previous = identities.get(key);
    if (previous && previous.pending.length > 0) {
      counters.pending -= previous.pending.length;
      arrivalsOf(previous.cluster).removeState(previous);
    }
    identities.set(key, state);
    counters.pending += state.pending.length;
    const queue = arrivalsOf(state.cluster);
    for (const observation of state.pending) queue.addUnsorted({ observation, key, state });
    clusters.get(state.cluster) ??
      clusters.set(state.cluster, {
        firstEvent: state.firstSeen,
        maxEvent: state.lastSeen,
        watermark: state.lastSeen,
      });
    const windowEnds = openGroups(state).map((group) => group.windowEnd);
    if (windowEnds.length > 0) windows.schedule(state.cluster, key, Math.min(...windowEnds));
  };

  /**
   * A copy is recorded when it arrives, not when the watermark passes it: it only ever adds a step that
   * reads after it may link to (chainBefore takes steps up to the read's time), and its place among this
   * partition's arrivals is fixed by the offsets, so a replay records it at the same point. It does not
   * move the clock of a cluster this partition has seen, which stays its own events' (a copy that comes
   * before any event of its cluster starts that cluster's state at the copy's time).
   */
  const link = (clusterName: string, event: AuditEvent) => {
    counters.copies += 1;
    const observation = observe(event, trustedProxiesOf(clusterName));
    if (!observation) return;
    let cluster = clusters.get(clusterName);
    if (!cluster) {
      cluster = advanceClock(clusters, clusterName, observation.t, policy.eventTime).cluster;
    } else if (observation.t < cluster.watermark - policy.eventTime.dedupRetention)
      observation.tooLate = true;
    if (evaluator.link(clusterName, cluster, observation)) dirtyClusters.add(clusterName);
  };

  const engine: Engine = {
    process({ cluster: clusterName, event, copy }) {
      if (copy !== undefined) {
        link(clusterName, event);
        return [];
      }
      counters.events += 1;
      const observation = observe(event, trustedProxiesOf(clusterName));
      if (!observation) {
        counters.ignored += 1;
        return [];
      }
      const { cluster, late, tooLate } = advanceClock(clusters, clusterName, observation.t, policy.eventTime);
      if (late) counters.late += 1;
      if (tooLate) observation.tooLate = true;
      dirtyClusters.add(clusterName);
      const key = partitionKey(clusterName, event);
      let state = identities.get(key);
      if (!state) {
        state = newIdentityState(clusterName, observation.identity.username, observation.t);
        identities.set(key, state);
      }
      insertSorted(state.pending, observation);
      counters.pending += 1;
      dirtyIdentities.add(key);
      arrivalsOf(clusterName).add({ observation, key, state } satisfies Arrival);
      const out = drain(clusterName, cluster.watermark);
      if (++sinceSweep >= SWEEP_EVERY_EVENTS) sweep();
      return sortFindings(out);
    },
    flush(options) {
      const out: Finding[] = [];
      for (const [name, cluster] of clusters) {
        const before = cluster.watermark;
        if (options?.idleMs !== undefined) {
          cluster.watermark = Math.max(
            cluster.watermark,
            cluster.maxEvent - allowedLateness + options.idleMs,
          );
          out.push(...drain(name, cluster.watermark));
        } else {
          out.push(...drain(name, Number.POSITIVE_INFINITY));
          cluster.watermark = Math.max(cluster.watermark, cluster.maxEvent);
        }
        if (cluster.watermark !== before) dirtyClusters.add(name);
      }
      sweep();
      return sortFindings(out);
    },

    snapshot: ((key?: string) => {
      if (key !== undefined) return identities.get(key);
      return {
        version: 1,
        clusters: Object.fromEntries(clusters),
        identities: Object.fromEntries(identities),
      } satisfies EngineState;
    }) as Engine['snapshot'],

    snapshotCluster: (name) => clusters.get(name),

    restore(partial) {
      for (const [name, record] of Object.entries(partial.clusters ?? {})) {
        const cluster = clusters.get(name);
        if (!cluster) clusters.set(name, { ...record, ...(record.steps && { steps: [...record.steps] }) });
        else {
          cluster.firstEvent = Math.min(cluster.firstEvent, record.firstEvent);
          cluster.maxEvent = Math.max(cluster.maxEvent, record.maxEvent);
          cluster.watermark = Math.max(cluster.watermark, record.watermark);
          if (record.steps) cluster.steps = mergeSteps(cluster.steps, record.steps);
        }
      }
      for (const [key, state] of Object.entries(partial.identities ?? {})) restoreIdentity(key, state);
    },

    takeDirty() {
      const dirty = { identities: [...dirtyIdentities], clusters: [...dirtyClusters] };
      dirtyIdentities.clear();
      dirtyClusters.clear();
      return dirty;
    },

    stats() {
      let open = 0;
      for (const state of identities.values()) open += openGroups(state).length;
      return {
        ...counters,
        findingsByRule: { ...findingsByRule },
        identities: identities.size,
        clusters: clusters.size,
        openGroups: open,
      };
    },
  };

  if (state) engine.restore(state);
  return engine;
}

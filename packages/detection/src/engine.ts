import { type AuditEvent, type Finding, partitionKey, type RuleId, ruleIds } from '@kaudit/audit-schema';
import { globMatcher } from '@kaudit/common';
import {
  type IdentityState,
  learn,
  newIdentityState,
  prune,
  resetBaseline,
  upgradeIdentityState,
} from './baseline';
import { createBusinessHours, createLocalClock } from './business-hours';
import { createDueQueue, type DueQueue } from './due-queue';
import {
  addToGroup,
  findingId,
  type Group,
  type GroupLimits,
  openGroup,
  toFinding,
  windowStartOf,
} from './grouping';
import { addressSet } from './identity';
import type { Policy } from './policy';
import { RULES } from './rules';
import { type Observation, observe, type SecretRead } from './scope';

/** Per cluster: when it was first seen (the learning period runs from there) and its event-time clock. */
export interface ClusterState {
  firstEvent: number;
  maxEvent: number;
  /** Requests at or before this time are processed; it trails maxEvent by eventTime.allowedLateness. */
  watermark: number;
}

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
  findings: number;
  findingsByRule: Record<RuleId, number>;
  identities: number;
  clusters: number;
  pending: number;
  openGroups: number;
}

export interface EngineInput {
  cluster: string;
  event: AuditEvent;
}

export interface Engine {
  /** Takes one event (an Envelope or { cluster, event }); returns the findings whose window it closed. */
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

export function createEngine({ policy, state }: { policy: Policy; state?: Partial<EngineState> }): Engine {
  const clusters = new Map<string, ClusterState>();
  const identities = new Map<string, IdentityState>();
  const queues = new Map<string, DueQueue>();
  /** Earliest time each key is queued at, so a key is not queued again for a later time. */
  const scheduled = new Map<string, number>();
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
    findings: 0,
    pending: 0,
  };
  const findingsByRule = Object.fromEntries(ruleIds.map((id) => [id, 0])) as Record<RuleId, number>;

  const trustedProxies = addressSet(policy.network.trustedProxies);
  const clusterCIDRs = addressSet(policy.network.clusterCIDRs);
  const localTime = createLocalClock(policy.timezone);
  const businessHours = createBusinessHours(policy);
  const limits: GroupLimits = {
    windowMs: policy.grouping.window,
    maxAuditIDs: policy.grouping.maxAuditIDs,
    maxObjects: policy.grouping.maxObjects,
  };
  const { allowedLateness, dedupRetention } = policy.eventTime;
  const globalIdentityAllowed = globMatcher(policy.allowList.identities);
  const globalNamespaceAllowed = globMatcher(policy.allowList.namespaces);
  const ruleAllowed = Object.fromEntries(
    RULES.map((rule) => {
      const list = policy.rules[rule.id].allowList;
      const identity = globMatcher(list.identities);
      const namespace = globMatcher(list.namespaces);
      return [
        rule.id,
        (o: Observation & { secret: SecretRead }) =>
          identity(o.identity.username) || namespace(o.secret.namespace),
      ];
    }),
  ) as Record<RuleId, (o: Observation & { secret: SecretRead }) => boolean>;
  let sinceSweep = 0;

  const queueOf = (cluster: string): DueQueue => {
    let queue = queues.get(cluster);
    if (!queue) {
      queue = createDueQueue();
      queues.set(cluster, queue);
    }
    return queue;
  };

  const schedule = (cluster: string, key: string, at: number) => {
    const current = scheduled.get(key);
    if (current !== undefined && current <= at) return;
    scheduled.set(key, at);
    queueOf(cluster).push(at, key);
  };

  const emit = (state: IdentityState, group: Group, out: Finding[]) => {
    delete state.groups[group.rule];
    state.emitted[group.id] = group.windowEnd;
    counters.findings += 1;
    findingsByRule[group.rule] += 1;
    out.push(toFinding(group, state.cluster));
  };

  const evaluate = (
    state: IdentityState,
    cluster: ClusterState,
    observation: Observation & { secret: SecretRead },
    out: Finding[],
  ) => {
    if (
      globalIdentityAllowed(observation.identity.username) ||
      globalNamespaceAllowed(observation.secret.namespace)
    ) {
      return;
    }
    const local = localTime(observation.t);
    const learning = observation.t < cluster.firstEvent + policy.learningPeriod;
    const mature = observation.t - state.firstSeen >= policy.baseline.matureAfter;
    const windowStart = windowStartOf(observation.t, limits.windowMs);
    const active = (id: RuleId) => policy.rules[id].enabled && !ruleAllowed[id](observation);
    for (const rule of RULES) {
      if (!active(rule.id)) continue;
      let group = state.groups[rule.id];
      // Requests of one identity are processed in time order: a later window means the earlier one is complete.
      if (group && group.windowStart < windowStart) {
        emit(state, group, out);
        group = undefined;
      }
      const groupOpen = group !== undefined && group.windowStart === windowStart;
      const hit = rule.evaluate({
        policy,
        observation,
        state,
        local,
        learning,
        mature,
        clusterCIDRs,
        businessHours,
        groupOpen,
        active,
      });
      if (!hit) continue;
      if (group && groupOpen) {
        addToGroup(group, hit, observation, limits);
        continue;
      }
      const id = findingId(rule.id, state.cluster, observation.identity.username, windowStart);
      if (state.emitted[id] !== undefined) {
        counters.suppressed += 1;
        continue;
      }
      const opened = openGroup(hit, observation, state.cluster, limits);
      if (group) {
        // A late request for an earlier window while a later one is open: report it on its own now.
        emit(state, opened, out);
      } else {
        state.groups[rule.id] = opened;
      }
    }
  };

  const apply = (key: string, state: IdentityState, observation: Observation, out: Finding[]) => {
    const cluster = clusters.get(state.cluster)!;
    if (observation.secret) {
      if (state.seen[observation.requestKey] !== undefined) {
        counters.duplicates += 1;
        return;
      }
      state.seen[observation.requestKey] = observation.t;
    }
    if (state.lastSeen < observation.t - policy.baseline.identityRetention)
      resetBaseline(state, observation.t);
    if (observation.t - state.prunedAt >= 3_600_000) {
      pruneEmitted(state, observation.t - dedupRetention - allowedLateness - limits.windowMs);
    }
    prune(state, observation.t, policy);
    if (observation.secret) {
      counters.secretReads += 1;
      if (observation.tooLate) counters.tooLate += 1;
      else evaluate(state, cluster, observation as Observation & { secret: SecretRead }, out);
    }
    learn(state, observation, localTime(observation.t), policy);
    dirtyIdentities.add(key);
  };

  /** Processes one key's buffered requests up to `upTo` and closes its windows ending by then. */
  const service = (key: string, upTo: number, out: Finding[]) => {
    const state = identities.get(key);
    if (!state) return;
    let processed = 0;
    while (processed < state.pending.length && state.pending[processed]!.t <= upTo) {
      apply(key, state, state.pending[processed]!, out);
      processed += 1;
    }
    if (processed > 0) {
      state.pending.splice(0, processed);
      counters.pending -= processed;
    }
    let next = state.pending[0]?.t ?? Number.POSITIVE_INFINITY;
    for (const group of Object.values(state.groups)) {
      if (group.windowEnd <= upTo) emit(state, group, out);
      else next = Math.min(next, group.windowEnd);
    }
    dirtyIdentities.add(key);
    if (next !== Number.POSITIVE_INFINITY) schedule(state.cluster, key, next);
  };

  const drain = (cluster: string, upTo: number): Finding[] => {
    const out: Finding[] = [];
    const queue = queues.get(cluster);
    if (!queue) return out;
    for (let time = queue.peekTime(); time !== undefined && time <= upTo; time = queue.peekTime()) {
      const key = queue.pop()!;
      if (scheduled.get(key) === time) scheduled.delete(key);
      service(key, upTo, out);
    }
    return out;
  };

  const sweep = () => {
    sinceSweep = 0;
    for (const [key, state] of identities) {
      const cluster = clusters.get(state.cluster);
      if (!cluster) continue;
      const idle = state.lastSeen < cluster.watermark - policy.baseline.identityRetention;
      if (idle && state.pending.length === 0 && Object.keys(state.groups).length === 0) {
        identities.delete(key);
        scheduled.delete(key);
        dirtyIdentities.add(key);
      }
    }
  };

  const restoreIdentity = (key: string, state: IdentityState) => {
    upgradeIdentityState(state);
    const previous = identities.get(key);
    if (previous) counters.pending -= previous.pending.length;
    identities.set(key, state);
    counters.pending += state.pending.length;
    clusters.get(state.cluster) ??
      clusters.set(state.cluster, {
        firstEvent: state.firstSeen,
        maxEvent: state.lastSeen,
        watermark: state.lastSeen,
      });
    const due = [state.pending[0]?.t, ...Object.values(state.groups).map((group) => group.windowEnd)].filter(
      (t): t is number => t !== undefined,
    );
    if (due.length > 0) schedule(state.cluster, key, Math.min(...due));
  };

  const engine: Engine = {
    process({ cluster: clusterName, event }) {
      counters.events += 1;
      const observation = observe(event, trustedProxies);
      if (!observation) {
        counters.ignored += 1;
        return [];
      }
      let cluster = clusters.get(clusterName);
      if (!cluster) {
        cluster = {
          firstEvent: observation.t,
          maxEvent: observation.t,
          watermark: observation.t - allowedLateness,
        };
        clusters.set(clusterName, cluster);
      } else {
        if (observation.t <= cluster.watermark) counters.late += 1;
        if (observation.t < cluster.watermark - dedupRetention) observation.tooLate = true;
        if (observation.t < cluster.firstEvent) cluster.firstEvent = observation.t;
        if (observation.t > cluster.maxEvent) cluster.maxEvent = observation.t;
        cluster.watermark = Math.max(cluster.watermark, cluster.maxEvent - allowedLateness);
      }
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
      schedule(clusterName, key, observation.t);
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
        if (!cluster) clusters.set(name, { ...record });
        else {
          cluster.firstEvent = Math.min(cluster.firstEvent, record.firstEvent);
          cluster.maxEvent = Math.max(cluster.maxEvent, record.maxEvent);
          cluster.watermark = Math.max(cluster.watermark, record.watermark);
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
      let openGroups = 0;
      for (const state of identities.values()) openGroups += Object.keys(state.groups).length;
      return {
        ...counters,
        findingsByRule: { ...findingsByRule },
        identities: identities.size,
        clusters: clusters.size,
        openGroups,
      };
    },
  };

  if (state) engine.restore(state);
  return engine;
}

/** Time order; ties broken by auditID and stage so every arrival order yields the same sequence. */
function compareObservations(a: Observation, b: Observation): number {
  return (
    a.t - b.t ||
    compareText(a.auditID, b.auditID) ||
    compareText(a.requestKey, b.requestKey) ||
    a.stageRank - b.stageRank
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function insertSorted(pending: Observation[], observation: Observation): void {
  let i = pending.length;
  while (i > 0 && compareObservations(pending[i - 1]!, observation) > 0) i--;
  pending.splice(i, 0, observation);
}

function pruneEmitted(state: IdentityState, cutoff: number): void {
  for (const [id, windowEnd] of Object.entries(state.emitted))
    if (windowEnd < cutoff) delete state.emitted[id];
}

function sortFindings(findings: Finding[]): Finding[] {
  if (findings.length > 1) {
    findings.sort((a, b) =>
      a.firstSeen < b.firstSeen ? -1 : a.firstSeen > b.firstSeen ? 1 : a.id < b.id ? -1 : 1,
    );
  }
  return findings;
}

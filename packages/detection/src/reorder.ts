import type { Finding } from '@kaudit/audit-schema';
import type { IdentityState } from './baseline';
import { createDueQueue, type DueQueue } from './due-queue';
import type { Observation } from './scope';

/** Per cluster: when it was first seen (the learning period runs from there) and its event-time clock. */
export interface ClusterState {
  firstEvent: number;
  maxEvent: number;
  /** Requests at or before this time are processed; it trails maxEvent by eventTime.allowedLateness. */
  watermark: number;
  /**
   * Recent privilege steps and minted credentials of every identity of the cluster (chain.ts), oldest
   * first, for privilege-escalation-then-secrets. Absent in state written before issue 15.
   */
  steps?: ChainStep[];
}

/** One request that gained privilege or minted a credential, as the chain rule tells it. */
export interface ChainStep {
  t: number;
  actor: string;
  auditID: string;
  kind: 'privilege' | 'mint';
  /** "created ClusterRoleBinding backup-helper-admin (role and subjects not logged at Metadata level)". */
  text: string;
  /** Who or what it empowers: usernames, `ClusterRoleBinding/name`, `RoleBinding/ns/name`, `ClusterRole/name`. */
  targets: string[];
}

/**
 * The reorder buffer's clock: requests arrive out of order and are held per identity (sorted, see
 * insertSorted) until the cluster's watermark, which trails its newest event by allowedLateness, passes
 * them. Moves the clock for one arrival and says whether the arrival was late (behind the watermark:
 * processed at once, out of order) or too late (beyond dedupRetention: rules skip it).
 */
export function advanceClock(
  clusters: Map<string, ClusterState>,
  name: string,
  t: number,
  eventTime: { allowedLateness: number; dedupRetention: number },
): { cluster: ClusterState; late: boolean; tooLate: boolean } {
  const cluster = clusters.get(name);
  if (!cluster) {
    const created = { firstEvent: t, maxEvent: t, watermark: t - eventTime.allowedLateness };
    clusters.set(name, created);
    return { cluster: created, late: false, tooLate: false };
  }
  const late = t <= cluster.watermark;
  const tooLate = t < cluster.watermark - eventTime.dedupRetention;
  if (t < cluster.firstEvent) cluster.firstEvent = t;
  if (t > cluster.maxEvent) cluster.maxEvent = t;
  cluster.watermark = Math.max(cluster.watermark, cluster.maxEvent - eventTime.allowedLateness);
  return { cluster, late, tooLate };
}

/** One buffered request, with the identity (partition key and state) it belongs to. */
export interface Arrival {
  observation: Observation;
  key: string;
  state: IdentityState;
}

/**
 * One cluster's buffered requests, in the one order the engine applies them: event time, ties by
 * auditID, request key and stage, then partition key (compareArrivals). Every identity's `pending` is
 * the same order restricted to that identity, so the head of the queue is always the head of its
 * identity's `pending`. Requests arrive nearly in time order: an arrival is appended and the next due
 * is the head, O(1) each; one behind the tail (late, or out of order within the lateness) is placed by
 * binary search. Restored requests are added unsorted and sorted once, before the queue is next used.
 */
export interface ArrivalQueue {
  readonly size: number;
  add(arrival: Arrival): void;
  /** For restore: appended as is; the queue sorts itself before it is next read or added to. */
  addUnsorted(arrival: Arrival): void;
  /** The next arrival in order, if it is due at or before `upTo` (removed from the queue). */
  takeDue(upTo: number): Arrival | undefined;
  /** Drops the arrivals of a state being replaced (restore of a key already held). */
  removeState(state: IdentityState): void;
}

export function compareArrivals(a: Arrival, b: Arrival): number {
  return compareObservations(a.observation, b.observation) || compareText(a.key, b.key);
}

/** Compaction threshold: the consumed head of the array is cut off once it is this long and half of it. */
const COMPACT_AFTER = 4096;

export function createArrivalQueue(): ArrivalQueue {
  let items: Arrival[] = [];
  let head = 0;
  let sorted = true;
  const ensureSorted = () => {
    if (sorted) return;
    items = items.slice(head).sort(compareArrivals);
    head = 0;
    sorted = true;
  };
  return {
    get size() {
      return items.length - head;
    },
    add(arrival) {
      ensureSorted();
      const n = items.length;
      if (n === head || compareArrivals(items[n - 1]!, arrival) <= 0) {
        items.push(arrival);
        return;
      }
      // First position whose arrival sorts after this one: equal arrivals keep their arrival order.
      let low = head;
      let high = n - 1;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (compareArrivals(items[middle]!, arrival) <= 0) low = middle + 1;
        else high = middle;
      }
      items.splice(low, 0, arrival);
    },
    addUnsorted(arrival) {
      items.push(arrival);
      sorted = false;
    },
    takeDue(upTo) {
      ensureSorted();
      if (head === items.length) return undefined;
      const next = items[head]!;
      if (next.observation.t > upTo) return undefined;
      items[head] = undefined as unknown as Arrival;
      head += 1;
      if (head === items.length) {
        items.length = 0;
        head = 0;
      } else if (head >= COMPACT_AFTER && head * 2 >= items.length) {
        items = items.slice(head);
        head = 0;
      }
      return next;
    },
    removeState(state) {
      items = items.slice(head).filter((arrival) => arrival.state !== state);
      head = 0;
    },
  };
}

export interface DueSchedule {
  /** Something of `key` (a window end) is due at event time `at` in `cluster`. */
  schedule(cluster: string, key: string, at: number): void;
  /** Pops, in time order, the keys of `cluster` due at or before `upTo` (an empty array: none). */
  due(cluster: string, upTo: number): readonly string[];
  forget(key: string): void;
}

const NONE: readonly string[] = Object.freeze([]);

/** One due-queue per cluster, and each key queued at most once for its earliest due time. */
export function createDueSchedule(): DueSchedule {
  const queues = new Map<string, DueQueue>();
  /** Earliest time each key is queued at, so a key is not queued again for a later time. */
  const scheduled = new Map<string, number>();
  return {
    schedule(cluster, key, at) {
      const current = scheduled.get(key);
      if (current !== undefined && current <= at) return;
      scheduled.set(key, at);
      let queue = queues.get(cluster);
      if (!queue) {
        queue = createDueQueue();
        queues.set(cluster, queue);
      }
      queue.push(at, key);
    },
    due(cluster, upTo) {
      const queue = queues.get(cluster);
      const first = queue?.peekTime();
      // The usual answer (asked once per event): nothing, without allocating.
      if (first === undefined || first > upTo) return NONE;
      const keys: string[] = [];
      for (let time = queue!.peekTime(); time !== undefined && time <= upTo; time = queue!.peekTime()) {
        const key = queue!.pop()!;
        if (scheduled.get(key) === time) scheduled.delete(key);
        keys.push(key);
      }
      return keys;
    },
    forget(key) {
      scheduled.delete(key);
    },
  };
}

/** Time order; ties broken by auditID and stage so every arrival order yields the same sequence. */
export function compareObservations(a: Observation, b: Observation): number {
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

/** Into one identity's `pending`, after the requests that sort before or equal to it. */
export function insertSorted(pending: Observation[], observation: Observation): void {
  let i = pending.length;
  while (i > 0 && compareObservations(pending[i - 1]!, observation) > 0) i--;
  // Nearly always the end: push, which is much cheaper than splice.
  if (i === pending.length) pending.push(observation);
  else pending.splice(i, 0, observation);
}

/** Findings in first-seen order (then id, then revision), whatever order their windows closed in. */
export function sortFindings(findings: Finding[]): Finding[] {
  if (findings.length > 1) {
    findings.sort((a, b) =>
      a.firstSeen < b.firstSeen
        ? -1
        : a.firstSeen > b.firstSeen
          ? 1
          : a.id < b.id
            ? -1
            : a.id > b.id
              ? 1
              : (a.revision ?? 1) - (b.revision ?? 1),
    );
  }
  return findings;
}

/** Chain steps of two copies of a cluster's state (restore): each step once, in time order. */
export function mergeSteps(a: ChainStep[] | undefined, b: ChainStep[]): ChainStep[] {
  const byId = new Map<string, ChainStep>();
  for (const step of [...(a ?? []), ...b]) byId.set(`${step.actor}\u0000${step.auditID}`, step);
  return [...byId.values()].sort((x, y) => x.t - y.t || compareText(x.auditID, y.auditID));
}

import type { RuleId } from '@kaudit/audit-schema';
import type { LocalTime } from './business-hours';
import type { Group } from './grouping';
import type { Policy } from './policy';
import { type Observation, succeeded } from './scope';

/**
 * What kaudit knows about one identity of one cluster (one Kafka partition key). Plain JSON on purpose:
 * the detector writes it to a compacted changelog topic and reads it back when a partition is assigned.
 * Every map is bounded (oldest entry evicted) and aged out by event time, never by the wall clock.
 */
export interface IdentityState {
  cluster: string;
  username: string;
  firstSeen: number;
  lastSeen: number;
  /** Successful secret reads ever counted (0: this identity never read a secret). */
  secretReads: number;
  /** Has listed or watched secrets across all namespaces before. */
  clusterWideReads: boolean;
  /** Source address -> last seen (ms). Learned from every successful request, not only secret reads. */
  ips: Record<string, number>;
  /**
   * Source address -> event time from which it counts as known for secret reads: its first sighting plus
   * network.knownAddressMinAge, or the first secret read from it (judged then) if that is earlier. Same
   * keys as `ips`. A request that is not a secret read cannot make an address known at once, so stolen
   * credentials cannot launder their address with `kubectl auth can-i` before reading Secrets.
   */
  ipKnownFrom: Record<string, number>;
  /** User-agent product (e.g. "kubectl") -> last seen. */
  agents: Record<string, number>;
  /** Namespaces whose secrets it read -> last seen. */
  namespaces: Record<string, number>;
  /** Hours of the week active, local time: hours[weekday] has bit `hour` set (weekday 0 = Monday). */
  hours: number[];
  /**
   * Hour of the day (local, "0".."23") -> last seen, so learned hours age out (baseline.hours.retention):
   * when an hour is forgotten its bit is cleared on every weekday of `hours`. At most 24 entries.
   */
  hoursSeen: Record<string, number>;
  /** Recent secret reads [time, "namespace/name"] for the enumeration rule (sliding window). */
  recentReads: Array<[number, string]>;
  /** Times of recent denied secret reads, for the denied-burst rule. */
  recentDenied: number[];
  /** requestKey -> time, so the other stages of a request already counted are dropped. */
  seen: Record<string, number>;
  /** Reordering buffer: observations waiting for the watermark, sorted by time. */
  pending: Observation[];
  /** Open finding groups, one per rule. */
  groups: Partial<Record<RuleId, Group>>;
  /**
   * Finding ids already emitted -> end of their window, so a late event never makes a second one.
   * Absent until a window is reported (most identities never have one; an empty dictionary is ~190
   * bytes of heap, 6 % of an identity's state).
   */
  emitted?: Record<string, number>;
  /** Event time of the last pruning of the maps above. */
  prunedAt: number;
  /** Recent first reads of a namespace's Secrets [time, namespace], for secret-new-namespace's window. */
  recentNewNamespaces?: Array<[number, string]>;
  /**
   * token-provenance: a credential id (`JTI=...`) or a pod uid -> [the first address it was used from, last
   * seen]. A bound token is used from its pod's address; the same key from another address is theft.
   * (Credential ids carry a `TYPE=` prefix and pod uids never do, so one map holds both.)
   */
  tokens?: Record<string, [string, number]>;
  /** Times of recent refused anonymous requests (any API), for anonymous-access's burst. */
  recentRefused?: number[];
  /** CertificateSigningRequests this identity created -> time, for credential-minted (self-approval). */
  csrs?: Record<string, number>;
}

/**
 * An empty map keyed by data (addresses, request keys, finding ids): without a prototype V8 keeps it in
 * dictionary mode from the start. A `{}` literal would get a hidden class per distinct set of keys, and
 * every identity's distinct addresses made thousands of them (the engine's largest cost, bench:detector).
 * Only for maps keyed by values unique to an identity: a dictionary costs more heap than a small object,
 * and maps of few, shared keys (agent products, namespaces, hours) keep their hidden classes shared.
 */
export function dictionary<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** What an identity's baseline holds before anything was learned. */
function freshBaseline(t: number) {
  return {
    firstSeen: t,
    lastSeen: t,
    secretReads: 0,
    clusterWideReads: false,
    ips: dictionary<number>(),
    ipKnownFrom: dictionary<number>(),
    agents: {},
    namespaces: {},
    hours: [0, 0, 0, 0, 0, 0, 0],
    hoursSeen: {},
    recentReads: [],
    recentDenied: [],
  } satisfies Partial<IdentityState>;
}

export function newIdentityState(cluster: string, username: string, t: number): IdentityState {
  return {
    cluster,
    username,
    ...freshBaseline(t),
    seen: dictionary<number>(),
    pending: [],
    groups: {},
    prunedAt: t,
  };
}

/** Forgets what was learned (the identity was unseen past identityRetention), keeping the bookkeeping. */
export function resetBaseline(state: IdentityState, t: number): void {
  Object.assign(state, freshBaseline(t));
  delete state.recentNewNamespaces;
  delete state.tokens;
  delete state.recentRefused;
  delete state.csrs;
}

/**
 * Brings state persisted by an earlier version up to date (the detector's changelog outlives a deploy):
 * addresses learned before ipKnownFrom existed were already trusted, so they stay known; learned hours
 * without a last-seen time start ageing from the identity's last request.
 */
export function upgradeIdentityState(state: IdentityState): IdentityState {
  if (!state.ipKnownFrom) {
    state.ipKnownFrom = dictionary();
    for (const ip of Object.keys(state.ips)) state.ipKnownFrom[ip] = 0;
  }
  if (!state.hoursSeen) {
    state.hoursSeen = {};
    for (const hour of learnedHours(state)) state.hoursSeen[hour] = state.lastSeen;
  }
  // Issue 15's fields (recentNewNamespaces, tokens, recentRefused, csrs) are optional: absent until
  // something is learned into them (most identities never do, and 100k empty maps are 26 MB of heap),
  // so state of earlier versions needs nothing.
  return state;
}

/** Whether a secret read at `t` from `ip` comes from an address known for the identity. */
export function isKnownAddress(state: IdentityState, ip: string, t: number): boolean {
  const from = state.ipKnownFrom[ip];
  return state.ips[ip] !== undefined && from !== undefined && from <= t;
}

/** "kubectl/v1.31.0 (linux/amd64) kubernetes/abc" -> "kubectl": upgrades do not make an agent new. */
export function agentProduct(userAgent: string): string {
  let product = products.get(userAgent);
  if (product === undefined) {
    const end = userAgent.search(/[/\s]/);
    product = (end === -1 ? userAgent : userAgent.slice(0, end)).toLowerCase();
    // A cluster has few distinct user agents; asked for every request (learn), so remembered.
    if (products.size >= MAX_PRODUCTS) products.clear();
    products.set(userAgent, product);
  }
  return product;
}

const MAX_PRODUCTS = 1024;
const products = new Map<string, string>();

export function hasHour(state: IdentityState, weekday: number, hour: number): boolean {
  return ((state.hours[weekday] ?? 0) & (1 << hour)) !== 0;
}

/** Hours of the day (any weekday) the identity was active in. */
export function learnedHours(state: IdentityState): number[] {
  const union = state.hours.reduce((all, day) => all | day, 0);
  return Array.from({ length: 24 }, (_, hour) => hour).filter((hour) => (union & (1 << hour)) !== 0);
}

/** Drops entries older than their retention; run at most once per event-time hour per identity. */
export function prune(state: IdentityState, t: number, policy: Policy): void {
  if (t - state.prunedAt < 3_600_000) return;
  state.prunedAt = t;
  const { sourceIPs, userAgents, namespaces, hours } = policy.baseline;
  dropOlder(state.ips, t - sourceIPs.retention);
  for (const ip of Object.keys(state.ipKnownFrom))
    if (state.ips[ip] === undefined) delete state.ipKnownFrom[ip];
  dropOlder(state.agents, t - userAgents.retention);
  dropOlder(state.namespaces, t - namespaces.retention);
  dropOlder(state.seen, t - policy.eventTime.dedupRetention);
  if (state.tokens) {
    for (const key of Object.keys(state.tokens))
      if (state.tokens[key]![1] < t - sourceIPs.retention) delete state.tokens[key];
    if (Object.keys(state.tokens).length === 0) delete state.tokens;
  }
  if (state.csrs) {
    dropOlder(state.csrs, t - policy.rules['credential-minted'].window);
    if (Object.keys(state.csrs).length === 0) delete state.csrs;
  }
  for (const hour of Object.keys(state.hoursSeen)) {
    if (state.hoursSeen[hour]! >= t - hours.retention) continue;
    delete state.hoursSeen[hour];
    const bit = ~(1 << Number(hour));
    state.hours = state.hours.map((day) => day & bit);
  }
}

/** Learns from one request (after the rules judged it against what was known before). */
export function learn(
  state: IdentityState,
  observation: Observation,
  local: LocalTime,
  policy: Policy,
): void {
  const { t } = observation;
  if (t > state.lastSeen) state.lastSeen = t;
  if (t < state.firstSeen) state.firstSeen = t;
  const ok = succeeded(observation);
  const { sourceIPs, userAgents, namespaces } = policy.baseline;
  const secret = observation.secret;
  const ip = observation.sourceIP;
  if (ok && ip) {
    const evicted = remember(state.ips, ip, t, sourceIPs.max);
    if (evicted !== undefined) delete state.ipKnownFrom[evicted];
    // min(): requests of one identity may be learned out of order (late arrivals).
    const knownFrom = secret ? t : t + policy.network.knownAddressMinAge;
    const known = state.ipKnownFrom[ip];
    // Stored only when it moves: a time is a heap number, and every store would allocate one.
    if (known === undefined || knownFrom < known) state.ipKnownFrom[ip] = knownFrom;
  }
  if (ok && observation.userAgent)
    remember(state.agents, agentProduct(observation.userAgent), t, userAgents.max);
  if (ok) {
    state.hours[local.weekday] = (state.hours[local.weekday] ?? 0) | (1 << local.hour);
    if ((state.hoursSeen[local.hour] ?? 0) < t) state.hoursSeen[local.hour] = t;
  }
  if (secret && secret.outcome !== 'failed') {
    const { window, distinctSecrets, distinctNamespaces } = policy.rules['secret-enumeration'];
    slide(state.recentReads, t - window, 2 * Math.max(distinctSecrets, distinctNamespaces));
    state.recentReads.push([t, `${secret.namespace ?? '*'}/${secret.name ?? '*'}`]);
  }
  if (secret?.outcome === 'denied') {
    const { window, threshold } = policy.rules['secret-access-denied-burst'];
    while (
      state.recentDenied.length > 0 &&
      (state.recentDenied[0]! <= t - window || state.recentDenied.length >= 2 * threshold)
    ) {
      state.recentDenied.shift();
    }
    state.recentDenied.push(t);
  }
  const facts = observation.facts;
  if (facts) learnFacts(state, observation, facts, policy);
  if (secret?.outcome === 'allowed') {
    state.secretReads += 1;
    // Only what secret-new-namespace can count: a new namespace of a mature baseline that already had one.
    if (
      secret.namespace &&
      state.namespaces[secret.namespace] === undefined &&
      t - state.firstSeen >= policy.baseline.matureAfter &&
      Object.keys(state.namespaces).length > 0
    ) {
      const { window } = policy.rules['secret-new-namespace'];
      state.recentNewNamespaces ??= [];
      slide(state.recentNewNamespaces, t - window, namespaces.max);
      state.recentNewNamespaces.push([t, secret.namespace]);
    }
    if (secret.namespace) remember(state.namespaces, secret.namespace, t, namespaces.max);
    if (secret.clusterWide && observation.verb !== 'get') state.clusterWideReads = true;
  }
}

const MAX_TOKENS = 64;
const MAX_CSRS = 16;

/** What the request rules learn: a token's first address, refused anonymous requests, CSRs created. */
function learnFacts(
  state: IdentityState,
  observation: Observation,
  facts: NonNullable<Observation['facts']>,
  policy: Policy,
): void {
  const { t, sourceIP } = observation;
  const ok = succeeded(observation);
  if (ok && sourceIP) {
    if (facts.credentialId) rememberToken(state, facts.credentialId, sourceIP, t);
    if (facts.pod) rememberToken(state, facts.pod, sourceIP, t);
  }
  if (observation.identity.kind === 'anonymous' && (observation.code === 401 || observation.code === 403)) {
    const { window, deniedThreshold } = policy.rules['anonymous-access'];
    state.recentRefused ??= [];
    while (
      state.recentRefused.length > 0 &&
      (state.recentRefused[0]! <= t - window || state.recentRefused.length >= 2 * deniedThreshold)
    ) {
      state.recentRefused.shift();
    }
    state.recentRefused.push(t);
  }
  if (ok && facts.resource === 'certificatesigningrequests' && observation.verb === 'create' && facts.name) {
    state.csrs ??= dictionary();
    remember(state.csrs, facts.name, t, MAX_CSRS);
  }
}

function rememberToken(state: IdentityState, key: string, ip: string, t: number): void {
  state.tokens ??= dictionary();
  const known = state.tokens[key];
  if (known) {
    if (t > known[1]) known[1] = t;
    return;
  }
  state.tokens[key] = [ip, t];
  const keys = Object.keys(state.tokens);
  if (keys.length <= MAX_TOKENS) return;
  let oldest = keys[0]!;
  for (const candidate of keys)
    if (state.tokens[candidate]![1] < state.tokens[oldest]![1]) oldest = candidate;
  delete state.tokens[oldest];
}

/** Records `key` as seen at `t`; returns the key evicted to stay within `max`, if any. */
function remember(map: Record<string, number>, key: string, t: number, max: number): string | undefined {
  const previous = map[key];
  if (previous !== undefined) {
    if (t > previous) map[key] = t;
    return undefined;
  }
  map[key] = t;
  const keys = Object.keys(map);
  if (keys.length <= max) return undefined;
  // Evict the least recently seen; ties broken by key so eviction is deterministic.
  let oldest = keys[0]!;
  for (const candidate of keys) {
    const a = map[candidate]!;
    const b = map[oldest]!;
    if (a < b || (a === b && candidate < oldest)) oldest = candidate;
  }
  delete map[oldest];
  return oldest;
}

/** Keeps entries newer than `since`, at most `max` of them (the newest). */
function slide(entries: Array<[number, string]>, since: number, max: number): void {
  let drop = 0;
  while (drop < entries.length && (entries[drop]![0] <= since || entries.length - drop >= max)) drop++;
  if (drop > 0) entries.splice(0, drop);
}

function dropOlder(map: Record<string, number>, cutoff: number): void {
  for (const key of Object.keys(map)) if (map[key]! < cutoff) delete map[key];
}

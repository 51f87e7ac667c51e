import { type Finding, type Severity, severityRank } from '@kaudit/audit-schema';
import { DIGEST_MAX_FINDING_IDS, type Digest } from './alert';

export interface ThrottleLimit {
  maxAlerts: number;
  windowMs: number;
}

interface WindowState<M> {
  route: string;
  cluster: string;
  identity: string;
  windowStartMs: number;
  windowEndMs: number;
  maxAlerts: number;
  delivered: number;
  held: Array<{ finding: Finding; member: M }>;
  /** Later revisions of findings of this window (see update()). */
  updates: Array<{ finding: Finding; member: M }>;
}

export interface DueDigest<M> {
  digest: Digest;
  /** What the caller passed with each folded finding (e.g. the Kafka message to acknowledge). */
  members: M[];
}

export type ThrottleDecision = 'deliver' | 'fold';

/**
 * Per route, at most `maxAlerts` findings per identity (per cluster) per window are delivered; the rest
 * are held and come out of `due()` as one digest when the window has closed. Windows are aligned to
 * the epoch and placed by the finding's event time (`firstSeen`), never by when it arrived, so a
 * replayed backlog is throttled exactly like the live stream was. Pure: time comes in as arguments.
 */
export function createThrottle<M>(options: { graceMs?: number } = {}) {
  const graceMs = options.graceMs ?? 0;
  const windows = new Map<string, WindowState<M>>();
  /** Members of updates whose window closed without a digest (takeReleased()). */
  const released: M[] = [];

  function stateFor(route: string, limit: ThrottleLimit, finding: Finding): WindowState<M> {
    const eventMs = Date.parse(finding.firstSeen);
    const windowStartMs = Math.floor(eventMs / limit.windowMs) * limit.windowMs;
    const identity = finding.identity.username;
    const key = JSON.stringify([route, finding.cluster, identity, windowStartMs]);
    let state = windows.get(key);
    if (!state) {
      state = {
        route,
        cluster: finding.cluster,
        identity,
        windowStartMs,
        windowEndMs: windowStartMs + limit.windowMs,
        maxAlerts: limit.maxAlerts,
        delivered: 0,
        held: [],
        updates: [],
      };
      windows.set(key, state);
    }
    return state;
  }

  return {
    /**
     * `alreadyDelivered`: the finding went out before a restart. It still counts against the limit,
     * so a replay after a restart cannot let through more than the limit, and it is never folded.
     */
    admit(
      route: string,
      limit: ThrottleLimit,
      finding: Finding,
      member: M,
      alreadyDelivered = false,
    ): ThrottleDecision {
      const state = stateFor(route, limit, finding);
      if (alreadyDelivered || state.delivered < state.maxAlerts) {
        state.delivered += 1;
        return 'deliver';
      }
      state.held.push({ finding, member });
      return 'fold';
    },

    /**
     * Digests of every window that closed (end + grace <= closeAtMs); forgets windows that ended a
     * whole window length before forgetAtMs. Both are event times (see event-clock.ts): forgetAtMs
     * should be the latest event time seen, so a window is kept while its findings may still arrive.
     */
    due(closeAtMs: number, forgetAtMs: number = closeAtMs): Array<DueDigest<M>> {
      const out: Array<DueDigest<M>> = [];
      for (const [key, state] of windows) {
        if (state.windowEndMs + graceMs > closeAtMs) continue;
        if (state.held.length > 0 || state.updates.length > 0) {
          const members = [...state.held, ...state.updates].map((h) => h.member);
          // Updates alone are no reason for a message: they ride along in a digest that is sent anyway.
          if (state.held.length > 0) out.push({ digest: buildDigest(state), members });
          else released.push(...members);
          state.held = [];
          state.updates = [];
        }
        // Kept one more window so late findings of a closed window are still counted against it.
        if (state.windowEndMs + (state.windowEndMs - state.windowStartMs) + graceMs <= forgetAtMs) {
          windows.delete(key);
        }
      }
      return out;
    },

    /**
     * A later revision of a finding (the detector reports a finding at once and updates its id as
     * evidence joins): never a second alert and never counted against the limit; it is folded into the
     * window's digest, replacing an earlier revision held there or listed as an update of one delivered.
     * A window with updates only sends nothing: its members come out of takeReleased() once it closed.
     */
    update(route: string, limit: ThrottleLimit, finding: Finding, member: M): void {
      stateFor(route, limit, finding).updates.push({ finding, member });
    },

    /** Updates of windows that closed (due()) with nothing to send: to acknowledge. */
    takeReleased(): M[] {
      return released.splice(0);
    },

    /** Findings held back right now (they are not acknowledged until their digest is delivered). */
    heldCount(): number {
      let n = 0;
      for (const state of windows.values()) n += state.held.length + state.updates.length;
      return n;
    },

    windowCount(): number {
      return windows.size;
    },
  };
}

export type Throttle<M> = ReturnType<typeof createThrottle<M>>;

function buildDigest<M>(state: WindowState<M>): Digest {
  // The latest revision of each id: a held finding is replaced by its update, the rest are updates.
  const latest = new Map<string, Finding>();
  for (const { finding } of state.updates) {
    const known = latest.get(finding.id);
    if (!known || (finding.revision ?? 1) > (known.revision ?? 1)) latest.set(finding.id, finding);
  }
  const findings = state.held.map((h) => {
    const newer = latest.get(h.finding.id);
    latest.delete(h.finding.id);
    return newer && (newer.revision ?? 1) > (h.finding.revision ?? 1) ? newer : h.finding;
  });
  const updated = [...latest.values()];
  const first = findings[0]!;
  const rules: Digest['rules'] = {};
  let maxSeverity: Severity = 'low';
  let firstSeen = first.firstSeen;
  let lastSeen = first.lastSeen;
  for (const f of [...findings, ...updated]) {
    if (findings.includes(f)) rules[f.rule] = (rules[f.rule] ?? 0) + 1;
    if (severityRank[f.severity] > severityRank[maxSeverity]) maxSeverity = f.severity;
    if (Date.parse(f.firstSeen) < Date.parse(firstSeen)) firstSeen = f.firstSeen;
    if (Date.parse(f.lastSeen) > Date.parse(lastSeen)) lastSeen = f.lastSeen;
  }
  const digest: Digest = {
    kind: 'kaudit.digest',
    id: `digest/${state.route}/${first.id}`,
    route: state.route,
    cluster: state.cluster,
    identity: state.identity,
    windowStart: new Date(state.windowStartMs).toISOString(),
    windowEnd: new Date(state.windowEndMs).toISOString(),
    maxAlerts: state.maxAlerts,
    count: findings.length,
    rules,
    maxSeverity,
    firstSeen,
    lastSeen,
    findingIds: findings.slice(0, DIGEST_MAX_FINDING_IDS).map((f) => f.id),
    sample: first,
  };
  if (updated.length > 0) {
    digest.updated = updated.length;
    digest.updates = updated.slice(0, DIGEST_MAX_FINDING_IDS).map((f) => {
      const update: NonNullable<Digest['updates']>[number] = {
        id: f.id,
        rule: f.rule,
        count: f.count,
        lastSeen: f.lastSeen,
      };
      if (f.revision) update.revision = f.revision;
      return update;
    });
  }
  return digest;
}

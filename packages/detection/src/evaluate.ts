import type { Finding, RuleId } from '@kaudit/audit-schema';
import { globMatcher } from '@kaudit/common';
import { type IdentityState, learn, prune, resetBaseline } from './baseline';
import { createBusinessHours, createLocalClock } from './business-hours';
import { report, unreported, updateDue } from './emission';
import { addToGroup, findingId, type Group, type GroupLimits, openGroup, windowStartOf } from './grouping';
import { addressSet } from './identity';
import type { Policy } from './policy';
import type { ClusterState } from './reorder';
import { RULES } from './rules';
import type { Observation, SecretRead } from './scope';

/** The engine's counters this file moves (engine.ts owns them and reports them in stats()). */
export interface EvaluationCounters {
  secretReads: number;
  duplicates: number;
  tooLate: number;
  suppressed: number;
  /** Findings reported (first revisions). */
  findings: number;
  /** Later revisions of findings already reported (emission.ts). */
  updates: number;
}

export interface Evaluator {
  /**
   * One request of one identity, in time order: dedupe its stages, age the baseline, run every active
   * rule (secret reads not too late) and group hits into findings, then learn from it.
   */
  apply(state: IdentityState, cluster: ClusterState, observation: Observation, out: Finding[]): void;
  /**
   * Closes a finding's group: a last revision if evidence joined since its last report, and the id is
   * remembered in `emitted` so the window is never reported again.
   */
  emit(state: IdentityState, group: Group, out: Finding[]): void;
}

/** Evaluation and grouping: the rules (rules/*.ts) over one identity's requests, with the allow-lists. */
export function createEvaluator(deps: {
  policy: Policy;
  counters: EvaluationCounters;
  findingsByRule: Record<RuleId, number>;
}): Evaluator {
  const { policy, counters, findingsByRule } = deps;
  const clusterCIDRs = addressSet(policy.network.clusterCIDRs);
  const localTime = createLocalClock(policy.timezone);
  const businessHours = createBusinessHours(policy);
  const limits: GroupLimits = {
    windowMs: policy.grouping.window,
    maxAuditIDs: policy.grouping.maxAuditIDs,
    maxObjects: policy.grouping.maxObjects,
  };
  const { allowedLateness, dedupRetention } = policy.eventTime;
  const { updateInterval } = policy.grouping;
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

  /** The next revision of a group's finding (emission.ts decides when). */
  const publish = (state: IdentityState, group: Group, at: number, out: Finding[]) => {
    if (group.revision) counters.updates += 1;
    else {
      counters.findings += 1;
      findingsByRule[group.rule] += 1;
    }
    out.push(report(group, state.cluster, at));
  };

  const emit = (state: IdentityState, group: Group, out: Finding[]) => {
    if (state.groups[group.rule] === group) delete state.groups[group.rule];
    state.emitted[group.id] = group.windowEnd;
    if (unreported(group)) publish(state, group, group.lastSeen, out);
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
        group.changed = true;
        if (updateDue(group, observation.t, updateInterval)) publish(state, group, observation.t, out);
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
        // Reported now, on the evidence it has; later evidence of the window updates the same id.
        publish(state, opened, observation.t, out);
      }
    }
  };

  return {
    emit,
    apply(state, cluster, observation, out) {
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
    },
  };
}

function pruneEmitted(state: IdentityState, cutoff: number): void {
  for (const [id, windowEnd] of Object.entries(state.emitted))
    if (windowEnd < cutoff) delete state.emitted[id];
}

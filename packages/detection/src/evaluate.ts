import type { Finding, RuleId } from '@kaudit/audit-schema';
import { globMatcher } from '@kaudit/common';
import { dictionary, type IdentityState, learn, prune, resetBaseline } from './baseline';
import { createBusinessHours, createLocalClock } from './business-hours';
import { recordStep, stepOf } from './chain';
import { report, unreported, updateDue } from './emission';
import {
  addToGroup,
  findingId,
  type Group,
  type GroupLimits,
  type Hit,
  openGroup,
  windowStartOf,
} from './grouping';
import { type AddressSet, addressSet } from './identity';
import { type Policy, policyForCluster } from './policy';
import type { ClusterState } from './reorder';
import { REQUEST_RULES, RULES, type RuleContext } from './rules';
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
  /**
   * A copy of another partition's request (Envelope.copy): remembered as a chain step if it is one under
   * the cluster's policy, nothing else (no rule, no baseline). Says whether it was.
   */
  link(clusterName: string, cluster: ClusterState, observation: Observation): boolean;
}

/** What one cluster is judged by: its policy (with overlays) and what is derived from it once. */
interface ClusterContext {
  policy: Policy;
  clusterCIDRs: AddressSet;
  localTime: ReturnType<typeof createLocalClock>;
  businessHours: ReturnType<typeof createBusinessHours>;
  globalIdentityAllowed: (name: string | undefined) => boolean;
  globalNamespaceAllowed: (name: string | undefined) => boolean;
  ruleAllowed: Record<RuleId, (o: Observation) => boolean>;
}

function clusterContext(policy: Policy): ClusterContext {
  const ruleAllowed = Object.fromEntries(
    [...RULES, ...REQUEST_RULES].map((rule) => {
      const list = policy.rules[rule.id].allowList;
      const identity = globMatcher(list.identities);
      const namespace = globMatcher(list.namespaces);
      return [
        rule.id,
        (o: Observation) =>
          identity(o.identity.username) || namespace(o.secret ? o.secret.namespace : o.facts?.namespace),
      ];
    }),
  ) as Record<RuleId, (o: Observation) => boolean>;
  return {
    policy,
    clusterCIDRs: addressSet(policy.network.clusterCIDRs),
    localTime: createLocalClock(policy.timezone),
    businessHours: createBusinessHours(policy),
    globalIdentityAllowed: globMatcher(policy.allowList.identities),
    globalNamespaceAllowed: globMatcher(policy.allowList.namespaces),
    ruleAllowed,
  };
}

/** Evaluation and grouping: the rules (rules/*.ts) over one identity's requests, with the allow-lists. */
export function createEvaluator(deps: {
  policy: Policy;
  counters: EvaluationCounters;
  findingsByRule: Record<RuleId, number>;
}): Evaluator {
  const { policy, counters, findingsByRule } = deps;
  const limits: GroupLimits = {
    windowMs: policy.grouping.window,
    maxAuditIDs: policy.grouping.maxAuditIDs,
    maxObjects: policy.grouping.maxObjects,
  };
  const { allowedLateness, dedupRetention } = policy.eventTime;
  const { updateInterval } = policy.grouping;
  const contexts = new Map<string, ClusterContext>();
  const global = clusterContext(policy);
  /** The context of a cluster: the global one unless an overlay of policy.clusters matches its name. */
  const contextOf = (cluster: string): ClusterContext => {
    let context = contexts.get(cluster);
    if (!context) {
      const resolved = policyForCluster(policy, cluster);
      context = resolved === policy ? global : clusterContext(resolved);
      contexts.set(cluster, context);
    }
    return context;
  };

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
    // Set to undefined, not deleted: a delete turns the groups object into a slow dictionary, and the
    // engine walks it after every request (engine.ts settle).
    if (state.groups[group.rule] === group) state.groups[group.rule] = undefined;
    state.emitted ??= dictionary();
    state.emitted[group.id] = group.windowEnd;
    if (unreported(group)) publish(state, group, group.lastSeen, out);
  };

  /** Runs rules over one request and groups their hits into findings (reported early, updated by id). */
  const judge = <O extends Observation>(
    rules: ReadonlyArray<{
      id: RuleId;
      ownAllowListOnly?: true;
      evaluate(context: RuleContext<O>): Hit | undefined;
    }>,
    context: ClusterContext,
    state: IdentityState,
    cluster: ClusterState,
    observation: O,
    out: Finding[],
  ) => {
    const { policy: effective } = context;
    const username = observation.identity.username;
    const namespace = observation.secret ? observation.secret.namespace : observation.facts?.namespace;
    const globallyAllowed =
      context.globalIdentityAllowed(username) || context.globalNamespaceAllowed(namespace);
    const local = context.localTime(observation.t);
    const learning = observation.t < cluster.firstEvent + effective.learningPeriod;
    const mature = observation.t - state.firstSeen >= effective.baseline.matureAfter;
    const windowStart = windowStartOf(observation.t, limits.windowMs);
    const active = (id: RuleId) => effective.rules[id].enabled && !context.ruleAllowed[id](observation);
    // One context for every rule of this request; only groupOpen differs between rules.
    const ruleContext: RuleContext<O> = {
      policy: effective,
      observation,
      cluster,
      state,
      local,
      learning,
      mature,
      clusterCIDRs: context.clusterCIDRs,
      businessHours: context.businessHours,
      groupOpen: false,
      active,
    };
    for (const rule of rules) {
      if (!effective.rules[rule.id].enabled) continue;
      if (rule.ownAllowListOnly) {
        if (globMatcherCache(effective.rules[rule.id].allowList.identities)(username)) continue;
      } else if (globallyAllowed || !active(rule.id)) continue;
      let group = state.groups[rule.id];
      // Requests of one identity are processed in time order: a later window means the earlier one is complete.
      if (group && group.windowStart < windowStart) {
        emit(state, group, out);
        group = undefined;
      }
      const groupOpen = group !== undefined && group.windowStart === windowStart;
      ruleContext.groupOpen = groupOpen;
      const hit = rule.evaluate(ruleContext);
      if (!hit) continue;
      if (group && groupOpen) {
        addToGroup(group, hit, observation, limits);
        group.changed = true;
        if (updateDue(group, observation.t, updateInterval)) publish(state, group, observation.t, out);
        continue;
      }
      const id = findingId(rule.id, state.cluster, username, windowStart);
      if (state.emitted?.[id] !== undefined) {
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
    link(clusterName, cluster, observation) {
      if (!observation.facts?.resource || observation.tooLate) return false;
      const effective = contextOf(clusterName).policy;
      const step = stepOf(observation, effective);
      if (step) recordStep(cluster, step, effective);
      return step !== undefined;
    },
    apply(state, cluster, observation, out) {
      if (observation.secret) {
        if (state.seen[observation.requestKey] !== undefined) {
          counters.duplicates += 1;
          return;
        }
        state.seen[observation.requestKey] = observation.t;
      }
      const context = contextOf(state.cluster);
      const effective = context.policy;
      if (state.lastSeen < observation.t - effective.baseline.identityRetention)
        resetBaseline(state, observation.t);
      if (observation.t - state.prunedAt >= 3_600_000) {
        pruneEmitted(state, observation.t - dedupRetention - allowedLateness - limits.windowMs);
      }
      prune(state, observation.t, effective);
      if (observation.secret) {
        counters.secretReads += 1;
        if (observation.tooLate) counters.tooLate += 1;
        else judge(RULES, context, state, cluster, observation as Observation & { secret: SecretRead }, out);
      }
      if (observation.facts && !observation.tooLate) {
        if (mayConcernRequestRules(state, observation, observation.facts))
          judge(REQUEST_RULES, context, state, cluster, observation, out);
        if (observation.facts.resource) {
          const step = stepOf(observation, effective);
          if (step) recordStep(cluster, step, effective);
        }
      }
      learn(state, observation, context.localTime(observation.t), effective);
    },
  };
}

/**
 * Whether a request rule could say anything about this request. Most requests with facts are a bound
 * token's ordinary use from its own address: the rules are not run for them (half the engine's time in a
 * mix where every service account carries user.extra, as since Kubernetes 1.30).
 */
function mayConcernRequestRules(
  state: IdentityState,
  observation: Observation,
  facts: NonNullable<Observation['facts']>,
): boolean {
  if (facts.resource !== undefined || facts.path !== undefined) return true;
  if (facts.legacyToken !== undefined && observation.secret) return true;
  const ip = observation.sourceIP;
  if (ip === undefined) return false;
  if (facts.credentialId !== undefined) {
    const known = state.tokens?.[facts.credentialId];
    if (known !== undefined && known[0] !== ip) return true;
  }
  if (facts.pod !== undefined) {
    const known = state.tokens?.[facts.pod];
    if (known !== undefined && known[0] !== ip) return true;
  }
  return false;
}

const globCache = new Map<readonly string[], (name: string | undefined) => boolean>();
function globMatcherCache(patterns: readonly string[]): (name: string | undefined) => boolean {
  let matcher = globCache.get(patterns);
  if (!matcher) {
    matcher = globMatcher(patterns);
    globCache.set(patterns, matcher);
  }
  return matcher;
}

function pruneEmitted(state: IdentityState, cutoff: number): void {
  const { emitted } = state;
  if (!emitted) return;
  let left = 0;
  for (const id in emitted) {
    if (emitted[id]! < cutoff) delete emitted[id];
    else left += 1;
  }
  // Not `delete`: deleting a field of the state object would turn it into a slow dictionary.
  if (left === 0) state.emitted = undefined;
}

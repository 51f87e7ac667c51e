import { RBAC_RESOURCES, RBAC_WRITE_VERBS } from '@kaudit/audit-schema';
import { globMatcher } from '@kaudit/common';
import type { Policy } from './policy';
import type { ChainStep, ClusterState } from './reorder';
import { type Observation, succeeded } from './scope';

/**
 * The steps privilege-escalation-then-secrets tells: requests that gained privilege (a binding or a role
 * written) or minted a credential (TokenRequest for another account), remembered per cluster for the
 * rule's window so that a later Secret read — by the same identity, by an identity it minted a token for
 * or impersonated, or through the binding it created — can be told as one chain. The engine processes
 * the requests of one cluster in event-time order across identities (engine.ts, drain), so a step is
 * always recorded before the read that follows it, whatever the arrival order within the lateness.
 *
 * Kept per cluster in one engine. The detector's engines each see the identities of one partition; the
 * sink puts a copy of every step where a read it may empower will be (audit-schema chain-copies.ts: RBAC
 * writes on every partition, a TokenRequest on its account's), and the engine records copies on arrival
 * (engine.ts), so each partition's engine holds the steps its readers' chains need, whatever the
 * partition count.
 */

const KIND: Record<string, string> = {
  rolebindings: 'RoleBinding',
  clusterrolebindings: 'ClusterRoleBinding',
  roles: 'Role',
  clusterroles: 'ClusterRole',
};
/** How a step's text says each of RBAC_WRITE_VERBS. */
const VERB: Record<string, string> = { create: 'created', update: 'updated', patch: 'patched' };

const ignored = new WeakMap<readonly string[], (name: string | undefined) => boolean>();
const ignoredActor = (policy: Policy) => {
  const patterns = policy.rules['privilege-escalation-then-secrets'].ignoreActors;
  let matcher = ignored.get(patterns);
  if (!matcher) {
    matcher = globMatcher(patterns);
    ignored.set(patterns, matcher);
  }
  return matcher;
};

/** The step a request is, if any. */
export function stepOf(observation: Observation, policy: Policy): ChainStep | undefined {
  const { facts, identity, verb } = observation;
  if (!facts?.resource || !succeeded(observation)) return undefined;
  if (identity.kind === 'anonymous' || ignoredActor(policy)(identity.username)) return undefined;
  const base = { t: observation.t, actor: identity.username, auditID: observation.auditID };
  if (facts.resource === 'serviceaccounts' && facts.subresource === 'token' && verb === 'create') {
    const account = `system:serviceaccount:${facts.namespace}:${facts.name}`;
    if (account === identity.username) return undefined;
    return { ...base, kind: 'mint', text: `minted a token for ${account}`, targets: [account] };
  }
  if (!RBAC_RESOURCES.has(facts.resource) || !RBAC_WRITE_VERBS.has(verb) || !facts.name) return undefined;
  const kind = KIND[facts.resource]!;
  const ref = facts.namespace ? `${kind}/${facts.namespace}/${facts.name}` : `${kind}/${facts.name}`;
  const { powerfulRoles } = policy.rules['privilege-escalation-then-secrets'];
  const isBinding = facts.resource.endsWith('bindings');
  let how: string;
  if (isBinding) {
    if (facts.roleRef) {
      if (!powerfulRoles.includes(facts.roleRef.slice(facts.roleRef.indexOf('/') + 1))) return undefined;
      how = ` to ${facts.roleRef}${facts.subjects ? ` for ${facts.subjects.join(', ')}` : ''}`;
    } else how = ' (its role and subjects are not logged at Metadata level)';
  } else if (facts.powerfulRules !== undefined) {
    if (!facts.powerfulRules) return undefined;
    how = ' granting secrets, * or escalate/bind/impersonate';
  } else how = ' (its rules are not logged at Metadata level)';
  const name = facts.namespace ? `${facts.namespace}/${facts.name}` : facts.name;
  return {
    ...base,
    kind: 'privilege',
    text: `${VERB[verb]} ${kind} ${name}${how}`,
    targets: [ref, ...(facts.subjects ?? [])],
  };
}

/** Remembers a step for the window (steps arrive in event-time order; older ones fall off the front). */
export function recordStep(cluster: ClusterState, step: ChainStep, policy: Policy): void {
  const { window, maxSteps } = policy.rules['privilege-escalation-then-secrets'];
  cluster.steps ??= [];
  const steps = cluster.steps;
  if (steps.some((known) => known.auditID === step.auditID && known.actor === step.actor)) return;
  steps.push(step);
  if (steps.length > 1 && steps[steps.length - 2]!.t > step.t) steps.sort((a, b) => a.t - b.t);
  let drop = 0;
  while (drop < steps.length && (steps[drop]!.t < step.t - window || steps.length - drop > maxSteps)) drop++;
  if (drop > 0) steps.splice(0, drop);
}

/**
 * The chain that ends in this Secret read, in event-time order: steps within the window before it by the
 * reader itself, by its impersonator, or empowering it (a token minted for it, a binding naming it or
 * authorizing this read) — with the privilege steps of whoever minted its token. Undefined unless at
 * least one step gained privilege.
 */
export function chainBefore(
  cluster: ClusterState,
  observation: Observation,
  policy: Policy,
): ChainStep[] | undefined {
  const steps = cluster.steps;
  if (!steps || steps.length === 0) return undefined;
  const { window } = policy.rules['privilege-escalation-then-secrets'];
  const { t, identity, facts } = observation;
  const since = t - window;
  const authorizedBy = facts?.authorizedBy;
  const role = facts?.authorizedRole;
  const direct = (step: ChainStep) =>
    step.actor === identity.username ||
    step.actor === identity.impersonator ||
    step.targets.includes(identity.username) ||
    (authorizedBy !== undefined && step.targets.includes(authorizedBy)) ||
    (role !== undefined && step.targets.includes(role));
  const chain = new Set<ChainStep>();
  for (const step of steps) {
    if (step.t < since || step.t > t) continue;
    if (!direct(step)) continue;
    chain.add(step);
    if (step.kind === 'mint' && step.actor !== identity.username) {
      for (const earlier of steps)
        if (
          earlier.actor === step.actor &&
          earlier.kind === 'privilege' &&
          earlier.t >= since &&
          earlier.t <= step.t
        )
          chain.add(earlier);
    }
  }
  const ordered = [...chain].sort((a, b) => a.t - b.t || (a.auditID < b.auditID ? -1 : 1));
  return ordered.some((step) => step.kind === 'privilege') ? ordered : undefined;
}

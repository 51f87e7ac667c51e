import type { RuleId } from '@kaudit/audit-schema';
import type { IdentityState } from '../baseline';
import type { BusinessHours, LocalTime } from '../business-hours';
import type { Hit } from '../grouping';
import type { AddressSet } from '../identity';
import type { Policy } from '../policy';
import type { ClusterState } from '../reorder';
import type { Observation, SecretRead } from '../scope';

/** Everything a rule may read. `state` is the baseline as it was BEFORE this request is learned. */
export interface RuleContext<O extends Observation = Observation & { secret: SecretRead }> {
  /** The policy of this request's cluster (policyForCluster: the global one with its overlays). */
  policy: Policy;
  observation: O;
  /** The cluster's clock and what is remembered cluster-wide (privilege steps, chain.ts). */
  cluster: ClusterState;
  state: IdentityState;
  local: LocalTime;
  /** The cluster is still inside its learning period: no "new-*" finding. */
  learning: boolean;
  /** The identity's baseline is older than baseline.matureAfter. */
  mature: boolean;
  clusterCIDRs: AddressSet;
  businessHours: BusinessHours;
  /** A group of this rule is open for this identity in the current window (later requests join it). */
  groupOpen: boolean;
  /** Whether a rule is enabled and not allow-listed for this request (so one rule may defer to another). */
  active(rule: RuleId): boolean;
}

export interface Rule {
  id: RuleId;
  /** Called for secret reads only (after dedup and allow-lists); returns a hit or nothing. */
  evaluate(context: RuleContext): Hit | undefined;
  /**
   * Judged before the global allow-list and with no learning period: only the rule's own
   * allowList.identities silence it (secret-canary-read).
   */
  ownAllowListOnly?: true;
}

/**
 * A rule over any request (not only secret reads): called for requests that carry facts (request-facts.ts)
 * or come from an anonymous identity, secret reads included, after dedup and allow-lists.
 */
export interface RequestRule {
  id: RuleId;
  evaluate(context: RuleContext<Observation>): Hit | undefined;
}

/** The object of a request for a summary: "serviceaccounts/token default/backup-helper". */
export function describeObject(observation: Observation): string {
  const facts = observation.facts ?? {};
  const what = facts.subresource ? `${facts.resource}/${facts.subresource}` : (facts.resource ?? facts.path);
  const where = [facts.namespace, facts.name].filter(Boolean).join('/');
  return where ? `${what} ${where}` : `${what ?? 'an API'}`;
}

/** "secret default/db", "secrets in default", "secrets in all namespaces". */
export function describeRead(observation: Observation & { secret: SecretRead }): string {
  const { namespace, name } = observation.secret;
  if (name) return `secret ${namespace ? `${namespace}/` : ''}${name}`;
  return namespace ? `secrets in namespace ${namespace}` : 'secrets in all namespaces';
}

/** At most `max` items, then "and N more". */
export function listSome(items: readonly string[], max = 5): string {
  if (items.length === 0) return 'none';
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

/** 252_000 -> "4 minutes": how long ago, for summaries (not exact on purpose). */
export function roughDuration(ms: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (ms < 90_000) return plural(Math.max(0, Math.round(ms / 1000)), 'second');
  if (ms < 90 * 60_000) return plural(Math.round(ms / 60_000), 'minute');
  if (ms < 36 * 3_600_000) return plural(Math.round(ms / 3_600_000), 'hour');
  return plural(Math.round(ms / 86_400_000), 'day');
}

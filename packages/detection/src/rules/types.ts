import type { RuleId } from '@kaudit/audit-schema';
import type { IdentityState } from '../baseline';
import type { BusinessHours, LocalTime } from '../business-hours';
import type { Hit } from '../grouping';
import type { AddressSet } from '../identity';
import type { Policy } from '../policy';
import type { Observation, SecretRead } from '../scope';

/** Everything a rule may read. `state` is the baseline as it was BEFORE this request is learned. */
export interface RuleContext {
  policy: Policy;
  observation: Observation & { secret: SecretRead };
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

import { learnedHours } from '../baseline';
import { isHuman } from '../identity';
import { describeRead, type Rule } from './types';

/**
 * secret-off-hours. Humans are judged against the policy's business hours (local time in the policy's
 * zone, so DST and holidays are exact). Other identities run on schedules, not office hours: a CI account
 * that always runs at 02:00 is normal, so they are judged against the hours they were learned to be
 * active in, once their baseline is mature.
 */
export const offHours: Rule = {
  id: 'secret-off-hours',
  evaluate({ policy, observation, state, local, learning, mature, businessHours, groupOpen }) {
    const rule = policy.rules['secret-off-hours'];
    const { identity, secret } = observation;
    if (secret.outcome !== 'allowed' || identity.kind === 'anonymous') return undefined;
    const what = `${identity.username} read ${describeRead(observation)} at ${local.label}`;
    if (isHuman(identity.kind)) {
      if (businessHours.contains(local)) return undefined;
      return {
        rule: 'secret-off-hours',
        severity: rule.severity,
        summary: `${what}, outside business hours (${businessHours.describe()})`,
        details: { localTimes: [local.label], businessHours: businessHours.describe() },
      };
    }
    if (groupOpen) {
      return {
        rule: 'secret-off-hours',
        severity: 'low',
        summary: '',
        details: { localTimes: [local.label] },
      };
    }
    if (learning || !mature) return undefined;
    const hours = learnedHours(state);
    if (hours.length === 0) return undefined;
    const near = hours.some((hour) => circularDistance(hour, local.hour) <= rule.toleranceHours);
    if (near) return undefined;
    return {
      rule: 'secret-off-hours',
      severity: rule.learnedHoursSeverity,
      summary: `${what}, an hour it was never active in before (learned hours ${formatHours(hours)}, ${policy.timezone})`,
      details: { localTimes: [local.label], learnedHours: hours, toleranceHours: rule.toleranceHours },
    };
  },
};

function circularDistance(a: number, b: number): number {
  const d = Math.abs(a - b) % 24;
  return Math.min(d, 24 - d);
}

/** [1,2,3,9,10] -> "01-03h, 09-10h". */
function formatHours(hours: readonly number[]): string {
  const ranges: string[] = [];
  let start = hours[0]!;
  let previous = start;
  const flush = () => ranges.push(start === previous ? `${pad(start)}h` : `${pad(start)}-${pad(previous)}h`);
  for (const hour of hours.slice(1)) {
    if (hour === previous + 1) previous = hour;
    else {
      flush();
      start = hour;
      previous = hour;
    }
  }
  flush();
  return ranges.join(', ');
}

const pad = (n: number) => String(n).padStart(2, '0');

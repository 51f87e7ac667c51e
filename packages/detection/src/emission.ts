import type { Finding } from '@kaudit/audit-schema';
import { type Group, toFinding } from './grouping';

/**
 * When a finding is reported (ADR 0010). A finding is reported as soon as the request that opens its
 * group is past the watermark (for a threshold rule: the request that crosses the threshold), not when
 * its window closes. Later evidence of the same rule, identity and window updates the same finding id:
 * a new revision at most every grouping.updateInterval of evidence time, and a last one when the
 * window closes if anything joined since. Every decision here is on the identity's own requests in
 * event-time order, never on the watermark's position, so a replay reports the same revisions.
 */

/** Reports the group as it is now: the next revision of its finding. */
export function report(group: Group, cluster: string, at: number): Finding {
  group.revision = (group.revision ?? 0) + 1;
  group.changed = false;
  group.reportedAt = at;
  return toFinding(group, cluster);
}

/** Evidence at event time `t` just joined the group: is an update due? */
export function updateDue(group: Group, t: number, updateIntervalMs: number): boolean {
  return group.changed === true && t - (group.reportedAt ?? group.firstSeen) >= updateIntervalMs;
}

/**
 * The findings as they finally are: the highest revision of each id, in the order their ids were first
 * reported. What a replay must reproduce (the revisions in between depend on where updates fell).
 */
export function latestRevisions(findings: Iterable<Finding>): Finding[] {
  const latest = new Map<string, Finding>();
  for (const finding of findings) {
    const known = latest.get(finding.id);
    if (!known || (finding.revision ?? 1) >= (known.revision ?? 1)) latest.set(finding.id, finding);
  }
  return [...latest.values()];
}

/** At close: the group holds evidence no report carried yet (or was never reported). */
export function unreported(group: Group): boolean {
  return !group.revision || group.changed === true;
}

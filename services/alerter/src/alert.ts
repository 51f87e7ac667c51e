import type { Finding, RuleId, Severity } from '@kaudit/audit-schema';

/**
 * What the throttle sends instead of the alerts it held back: one message per route, identity and
 * window ("and 37 more like this"). JSON-serialisable: it is a webhook body, a HEC event and, when it
 * cannot be delivered, the raw item of a dead letter.
 */
export interface Digest {
  kind: 'kaudit.digest';
  /** Deterministic: `digest/<route>/<id of the first finding folded in>`. */
  id: string;
  route: string;
  cluster: string;
  identity: string;
  /** Event-time window the folded findings fall in. */
  windowStart: string;
  windowEnd: string;
  /** The route's limit: this many alerts per identity and window were delivered one by one. */
  maxAlerts: number;
  /** Findings folded into this digest. */
  count: number;
  rules: Partial<Record<RuleId, number>>;
  maxSeverity: Severity;
  firstSeen: string;
  lastSeen: string;
  /** Ids of the folded findings, the first 50 (count has the total). */
  findingIds: string[];
  /** The first folded finding, as an example of what was held back. */
  sample: Finding;
  /**
   * Findings alerted one by one whose later revisions (more evidence of the same id) were folded in
   * here instead of a second alert: how many, and the first 50 as they now are.
   */
  updated?: number;
  updates?: Array<Pick<Finding, 'id' | 'rule' | 'count' | 'lastSeen' | 'revision'>>;
}

export const DIGEST_MAX_FINDING_IDS = 50;

/** One thing to deliver to a destination; `id` is what dedup remembers per destination. */
export type Alert =
  | { kind: 'finding'; id: string; finding: Finding }
  | { kind: 'digest'; id: string; digest: Digest };

export function findingAlert(finding: Finding): Alert {
  return { kind: 'finding', id: finding.id, finding };
}

export function digestAlert(digest: Digest): Alert {
  return { kind: 'digest', id: digest.id, digest };
}

/** The JSON an alert is delivered as to the webhook and recorded as in a dead letter. */
export function alertBody(alert: Alert): Finding | Digest {
  return alert.kind === 'finding' ? alert.finding : alert.digest;
}

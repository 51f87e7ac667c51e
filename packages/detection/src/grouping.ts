import { createHash } from 'node:crypto';
import { type Finding, type RuleId, type Severity, severityRank } from '@kaudit/audit-schema';
import type { Identity } from './identity';
import type { Observation } from './scope';

/** What a rule says about one request. */
export interface Hit {
  rule: RuleId;
  severity: Severity;
  /** The sentence for the analyst: what is new compared with what was known. */
  summary: string;
  /** Facts that justify it; arrays are merged across the requests of a group, other values kept from the first. */
  details?: Record<string, unknown>;
  /** ATT&CK techniques this request adds to the rule's own (e.g. T1528 for a token used off-cluster). */
  mitre?: string[];
  /** Earlier requests this finding tells of (a chain's steps), listed before the request's own auditID. */
  auditIDs?: string[];
}

/**
 * Requests that one rule flagged for one identity inside one window, reported as one finding. Windows
 * are aligned to the epoch in event time, so the same requests always fall in the same window and the
 * finding id — hash(rule, cluster, identity, windowStart) — is the same on every replay.
 */
export interface Group {
  rule: RuleId;
  id: string;
  windowStart: number;
  windowEnd: number;
  severity: Severity;
  summary: string;
  identity: Identity;
  sourceIP?: string;
  userAgent?: string;
  verbs: string[];
  objects: Array<{ namespace?: string; name?: string }>;
  auditIDs: string[];
  count: number;
  firstSeen: number;
  lastSeen: number;
  details: Record<string, unknown>;
  /** Techniques beyond the rule's own, from hits that named them. */
  mitre?: string[];
  /** Reports made so far (emission.ts): 0 or absent = not reported yet (state of earlier versions). */
  revision?: number;
  /** Evidence joined since the last report. */
  changed?: boolean;
  /** Event time of the evidence the last report was made on. */
  reportedAt?: number;
}

export interface GroupLimits {
  windowMs: number;
  maxAuditIDs: number;
  maxObjects: number;
}

const MAX_DETAIL_ITEMS = 50;

export const TITLES: Record<RuleId, string> = {
  'secret-off-hours': 'Secret read at an unusual time',
  'secret-new-source-ip': 'Secret read from a new source address',
  'secret-new-service-account': 'Service account read secrets for the first time',
  'secret-enumeration': 'Secret enumeration',
  'secret-anonymous-access': 'Anonymous access to secrets',
  'secret-access-denied-burst': 'Burst of denied secret reads',
  'secret-unusual-user-agent': 'Secret read with an unusual user agent',
  'secret-new-namespace': 'Secrets read in a namespace never read before',
  'secret-canary-read': 'Canary Secret read',
  'credential-minted': 'Credential minted for another identity',
  'privilege-escalation-then-secrets': 'Privilege gained, then Secrets read',
  'token-provenance': 'Service-account token used where it does not belong',
  'anonymous-access': 'Anonymous access to the API',
};

export const MITRE: Record<RuleId, string[]> = {
  'secret-off-hours': ['T1552.007', 'T1078'],
  'secret-new-source-ip': ['T1552.007', 'T1078', 'T1528'],
  'secret-new-service-account': ['T1552.007', 'T1078.004'],
  'secret-enumeration': ['T1552.007', 'T1613'],
  'secret-anonymous-access': ['T1552.007', 'T1078.001'],
  'secret-access-denied-burst': ['T1552.007', 'T1613'],
  'secret-unusual-user-agent': ['T1552.007', 'T1078'],
  'secret-new-namespace': ['T1552.007', 'T1078'],
  'secret-canary-read': ['T1552.007', 'T1078'],
  'credential-minted': ['T1528', 'T1098'],
  'privilege-escalation-then-secrets': ['T1098', 'T1078', 'T1552.007'],
  'token-provenance': ['T1528', 'T1550.001'],
  'anonymous-access': ['T1078.001'],
};

export function windowStartOf(t: number, windowMs: number): number {
  return Math.floor(t / windowMs) * windowMs;
}

export function findingId(rule: RuleId, cluster: string, username: string, windowStart: number): string {
  return createHash('sha256')
    .update(`${rule}\u0000${cluster}\u0000${username}\u0000${windowStart}`)
    .digest('hex')
    .slice(0, 32);
}

export function openGroup(hit: Hit, observation: Observation, cluster: string, limits: GroupLimits): Group {
  const windowStart = windowStartOf(observation.t, limits.windowMs);
  const group: Group = {
    rule: hit.rule,
    id: findingId(hit.rule, cluster, observation.identity.username, windowStart),
    windowStart,
    windowEnd: windowStart + limits.windowMs,
    severity: hit.severity,
    summary: hit.summary,
    identity: observation.identity,
    verbs: [],
    objects: [],
    auditIDs: [],
    count: 0,
    firstSeen: observation.t,
    lastSeen: observation.t,
    details: {},
  };
  if (observation.sourceIP) group.sourceIP = observation.sourceIP;
  if (observation.userAgent) group.userAgent = observation.userAgent;
  addToGroup(group, hit, observation, limits);
  return group;
}

export function addToGroup(group: Group, hit: Hit, observation: Observation, limits: GroupLimits): void {
  group.count += 1;
  if (severityRank[hit.severity] > severityRank[group.severity]) {
    group.severity = hit.severity;
    group.summary = hit.summary;
  }
  for (const technique of hit.mitre ?? []) {
    group.mitre ??= [];
    if (!group.mitre.includes(technique)) group.mitre.push(technique);
  }
  if (observation.t < group.firstSeen) group.firstSeen = observation.t;
  if (observation.t > group.lastSeen) group.lastSeen = observation.t;
  if (!group.verbs.includes(observation.verb)) group.verbs.push(observation.verb);
  for (const auditID of [...(hit.auditIDs ?? []), observation.auditID]) {
    if (group.auditIDs.length < limits.maxAuditIDs && !group.auditIDs.includes(auditID))
      group.auditIDs.push(auditID);
  }
  const facts = observation.facts;
  const secret =
    observation.secret ??
    (facts?.name || facts?.namespace ? { namespace: facts.namespace, name: facts.name } : undefined);
  if (secret && group.objects.length < limits.maxObjects) {
    const known = group.objects.some((o) => o.namespace === secret.namespace && o.name === secret.name);
    if (!known) {
      const object: { namespace?: string; name?: string } = {};
      if (secret.namespace) object.namespace = secret.namespace;
      if (secret.name) object.name = secret.name;
      group.objects.push(object);
    }
  }
  for (const [key, value] of Object.entries(hit.details ?? {})) {
    const current = group.details[key];
    if (Array.isArray(value) && Array.isArray(current)) {
      for (const item of value) {
        if (current.length < MAX_DETAIL_ITEMS && !current.includes(item)) current.push(item);
      }
    } else if (current === undefined) {
      group.details[key] = Array.isArray(value) ? value.slice(0, MAX_DETAIL_ITEMS) : value;
    } else if (typeof value === 'number' && typeof current === 'number' && value > current) {
      group.details[key] = value;
    }
  }
}

export function toFinding(group: Group, cluster: string): Finding {
  const identity: Finding['identity'] = {
    username: group.identity.username,
    kind: group.identity.kind,
    groups: group.identity.groups,
  };
  if (group.identity.impersonator) identity.impersonator = group.identity.impersonator;
  if (group.identity.namespace) identity.namespace = group.identity.namespace;
  const more = group.count > 1 ? ` (${group.count} requests in this window)` : '';
  const finding: Finding = {
    id: group.id,
    rule: group.rule,
    severity: group.severity,
    title: TITLES[group.rule],
    summary: `${group.summary}${more}.`,
    cluster,
    identity,
    verbs: [...group.verbs].sort(),
    objects: group.objects,
    firstSeen: new Date(group.firstSeen).toISOString(),
    lastSeen: new Date(group.lastSeen).toISOString(),
    auditIDs: group.auditIDs,
    count: group.count,
    mitre: [...new Set([...MITRE[group.rule], ...(group.mitre ?? [])])],
    details: { ...group.details, windowStart: new Date(group.windowStart).toISOString() },
  };
  if (group.sourceIP) finding.sourceIP = group.sourceIP;
  if (group.userAgent) finding.userAgent = group.userAgent;
  if (group.revision) finding.revision = group.revision;
  return finding;
}

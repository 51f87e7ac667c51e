import { z } from 'zod';

export const ruleIds = [
  'secret-off-hours',
  'secret-new-source-ip',
  'secret-new-service-account',
  'secret-enumeration',
  'secret-anonymous-access',
  'secret-access-denied-burst',
  'secret-unusual-user-agent',
  'secret-new-namespace',
  'secret-canary-read',
  'credential-minted',
  'privilege-escalation-then-secrets',
  'token-provenance',
  'anonymous-access',
] as const;
export type RuleId = (typeof ruleIds)[number];

export const severities = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof severities)[number];
export const severityRank: Record<Severity, number> = { low: 1, medium: 2, high: 3, critical: 4 };

export const identityKinds = ['user', 'serviceaccount', 'node', 'system', 'anonymous'] as const;
export type IdentityKind = (typeof identityKinds)[number];

/** A finding: the value of every message on the alerts topic, and a document in Elasticsearch. */
export const FindingSchema = z.object({
  /** Deterministic from rule, cluster, identity and window: a re-delivered event never makes a second finding. */
  id: z.string().min(1),
  rule: z.enum(ruleIds),
  severity: z.enum(severities),
  title: z.string(),
  /** One sentence an analyst can act on: what is new compared with what was known. */
  summary: z.string(),
  cluster: z.string(),
  identity: z.object({
    username: z.string(),
    kind: z.enum(identityKinds),
    groups: z.array(z.string()),
    impersonator: z.string().optional(),
    /** Service account namespace, when kind is serviceaccount. */
    namespace: z.string().optional(),
  }),
  sourceIP: z.string().optional(),
  userAgent: z.string().optional(),
  verbs: z.array(z.string()),
  objects: z.array(z.object({ namespace: z.string().optional(), name: z.string().optional() })),
  /** Event time (requestReceivedTimestamp) of the first and last event covered. */
  firstSeen: z.iso.datetime({ offset: true }),
  lastSeen: z.iso.datetime({ offset: true }),
  auditIDs: z.array(z.string()),
  /** How many requests the finding covers (auditIDs may be capped). */
  count: z.number().int().positive(),
  /** MITRE ATT&CK technique ids, e.g. T1552.007. */
  mitre: z.array(z.string()),
  /** Rule-specific facts (known IPs, learned hours, thresholds) that justify the finding. */
  details: z.record(z.string(), z.unknown()).optional(),
  /**
   * 1 for the first report of a finding (made as soon as its evidence is past the watermark), then +1 for
   * each update of the same id as later evidence of its window joins (count, objects, auditIDs, lastSeen).
   * The highest revision is the finding; absent (earlier versions, which reported once) means 1.
   */
  revision: z.number().int().positive().optional(),
});
export type Finding = z.infer<typeof FindingSchema>;

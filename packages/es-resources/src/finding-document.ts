import { type Finding, severityRank } from '@kaudit/audit-schema';
import { compact, ECS_VERSION, type EsDocument, isIpAddress, unique } from './ecs';
import type { DocumentOptions } from './event-document';
import { DATASETS } from './names';

/** Elastic Security's risk scores for its four severities, so findings sort beside its alerts. */
const RISK_SCORE = { low: 21, medium: 47, high: 73, critical: 99 } as const;

const attackUrl = (id: string) => `https://attack.mitre.org/techniques/${id.replace('.', '/')}/`;

/**
 * A finding from the alerts topic as an ECS document, shaped as ECS describes an external alert
 * (event.kind: alert, event.severity, event.risk_score, rule.*, threat.*), so Elastic Security lists
 * it among external alerts and one custom query rule (policies/kibana/security/) turns it into a
 * Security alert. Generic over rule ids: everything comes from the finding itself. Its _id is the finding's own deterministic id,
 * so a finding produced twice is stored once. The audit IDs it covers go to kubernetes.audit.auditID,
 * the field the events use, so one filter pivots from a finding to its events. Pure.
 */
export function toFindingDocument(finding: Finding, options: DocumentOptions = {}): EsDocument {
  const sourceIp = isIpAddress(finding.sourceIP) ? finding.sourceIP : undefined;
  const doc = compact({
    '@timestamp': finding.firstSeen,
    data_stream: options.namespace
      ? { type: 'logs', dataset: DATASETS.findings, namespace: options.namespace }
      : undefined,
    ecs: { version: ECS_VERSION },
    message: finding.summary,
    event: {
      kind: 'alert',
      category: ['api'],
      type: ['info'],
      action: finding.rule,
      dataset: DATASETS.findings,
      module: 'kaudit',
      id: finding.id,
      severity: severityRank[finding.severity],
      risk_score: RISK_SCORE[finding.severity],
      reason: finding.summary,
      start: finding.firstSeen,
      end: finding.lastSeen,
    },
    rule: {
      id: finding.rule,
      uuid: finding.rule,
      name: finding.title,
      author: ['kaudit'],
      ruleset: 'kaudit',
      category: 'kubernetes-secrets',
      description: finding.summary,
    },
    threat: finding.mitre.length
      ? {
          framework: 'MITRE ATT&CK',
          technique: {
            // ECS keeps T1552 and T1552.007 apart: the parent in technique.id, the rest in subtechnique.
            id: unique(finding.mitre.map((id) => id.split('.')[0])),
            reference: unique(finding.mitre.map((id) => attackUrl(id.split('.')[0]!))),
            subtechnique: {
              id: finding.mitre.filter((id) => id.includes('.')),
              reference: finding.mitre.filter((id) => id.includes('.')).map(attackUrl),
            },
          },
        }
      : undefined,
    user: { name: finding.identity.username },
    source: { ip: sourceIp },
    related: {
      ip: sourceIp ? [sourceIp] : undefined,
      user: unique([finding.identity.username, finding.identity.impersonator]),
    },
    user_agent: { original: finding.userAgent },
    orchestrator: { type: 'kubernetes', cluster: { name: finding.cluster } },
    kubernetes: { audit: { auditID: finding.auditIDs } },
    kaudit: {
      cluster: finding.cluster,
      finding: {
        id: finding.id,
        rule: finding.rule,
        severity: finding.severity,
        title: finding.title,
        summary: finding.summary,
        count: finding.count,
        revision: finding.revision ?? 1,
        verbs: finding.verbs,
        objects: finding.objects,
        identity: {
          kind: finding.identity.kind,
          groups: finding.identity.groups,
          impersonator: finding.identity.impersonator,
          namespace: finding.identity.namespace,
        },
      },
    },
  }) as Record<string, unknown> & { kaudit: { finding: Record<string, unknown> } };
  // Rule-specific facts are stored as the detector wrote them (not indexed: their shape varies by rule).
  if (finding.details) doc.kaudit.finding.details = finding.details;
  return { _id: finding.id, doc };
}

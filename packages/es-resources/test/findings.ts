import type { Finding } from '@kaudit/audit-schema';

/** A finding as the detector writes it (shared by this package's tests). */
export function sampleFinding(overrides: Partial<Finding> = {}): Finding {
  return {
    id: 'secret-new-source-ip:prod:system:serviceaccount:ci:deployer:2026-01-05T10',
    rule: 'secret-new-source-ip',
    severity: 'high',
    title: 'Service account token used from a new address outside the cluster',
    summary:
      'system:serviceaccount:ci:deployer read 3 secrets from 198.51.100.7, outside the cluster CIDRs; it was only ever seen from 10.0.0.0/8.',
    cluster: 'prod',
    identity: {
      username: 'system:serviceaccount:ci:deployer',
      kind: 'serviceaccount',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:ci'],
      namespace: 'ci',
    },
    sourceIP: '198.51.100.7',
    userAgent: 'curl/8.5.0',
    verbs: ['get', 'list'],
    objects: [{ namespace: 'ci', name: 'registry-token' }, { namespace: 'prod' }],
    firstSeen: '2026-01-05T10:00:00.000000Z',
    lastSeen: '2026-01-05T10:04:00.000000Z',
    auditIDs: ['a-1', 'a-2', 'a-3'],
    count: 3,
    mitre: ['T1552.007', 'T1078'],
    details: { knownIPs: ['10.1.2.3'], windowMs: 300000 },
    ...overrides,
  };
}

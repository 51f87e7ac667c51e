import { type AuditEvent, effectiveUsername, type Finding, type RuleId } from '@kaudit/audit-schema';

let counter = 0;

/** A valid finding (tests, benchmarks): a human reading a secret at night unless overridden. */
export function buildFinding(overrides: Partial<Finding> = {}): Finding {
  counter += 1;
  return {
    id: `f-${process.pid}-${counter}`,
    rule: 'secret-off-hours',
    severity: 'high',
    title: 'Secret read outside business hours',
    summary:
      'alice@example.com read secret default/db-password at 02:14, outside business hours (Mon–Fri 08:00–18:00).',
    cluster: 'prod-eu-1',
    identity: { username: 'alice@example.com', kind: 'user', groups: ['system:authenticated'] },
    sourceIP: '203.0.113.10',
    userAgent: 'kubectl/v1.31.0 (linux/amd64) kubernetes/abc',
    verbs: ['get'],
    objects: [{ namespace: 'default', name: 'db-password' }],
    firstSeen: '2026-01-06T01:14:00.000Z',
    lastSeen: '2026-01-06T01:14:00.000Z',
    auditIDs: ['00000000-0000-4000-8000-000000000001'],
    count: 1,
    mitre: ['T1552.007'],
    ...overrides,
  };
}

/** A finding about one real audit event, shaped the way the detector reports it. */
export function findingFromEvent(event: AuditEvent, rule: RuleId, cluster = 'sample'): Finding {
  const username = effectiveUsername(event);
  const sa = /^system:serviceaccount:([^:]+):/.exec(username);
  const at = event.requestReceivedTimestamp;
  return buildFinding({
    id: `${rule}/${cluster}/${username}/${at}`,
    rule,
    cluster,
    identity: {
      username,
      kind: sa ? 'serviceaccount' : username.startsWith('system:node:') ? 'node' : 'user',
      groups: event.user.groups ?? [],
      ...(event.impersonatedUser ? { impersonator: event.user.username } : {}),
      ...(sa?.[1] ? { namespace: sa[1] } : {}),
    },
    ...(event.sourceIPs?.length ? { sourceIP: event.sourceIPs[event.sourceIPs.length - 1] } : {}),
    ...(event.userAgent ? { userAgent: event.userAgent } : {}),
    verbs: [event.verb],
    objects: event.objectRef
      ? [
          {
            ...(event.objectRef.namespace ? { namespace: event.objectRef.namespace } : {}),
            ...(event.objectRef.name ? { name: event.objectRef.name } : {}),
          },
        ]
      : [],
    firstSeen: at,
    lastSeen: at,
    auditIDs: [event.auditID],
    summary: `${username} ${event.verb} ${event.objectRef?.resource ?? event.requestURI}`,
  });
}

import type { AuditEvent, Finding } from '@kaudit/audit-schema';
import { buildEvent } from '@kaudit/testkit';
import { latestRevisions } from '../src/emission';
import { createEngine, type Engine } from '../src/engine';
import { defaultPolicy, type PolicyInput } from '../src/policy';

/**
 * Shared by the detection tests (not exported from the package). Timeline: the cluster is first seen on
 * WARMUP (Thursday 2026-01-01), so the default 7-day learning period is over by Monday 2026-01-12.
 */
export const WARMUP = '2026-01-01T10:00:00.000000Z';

export function secretRead(
  at: string,
  overrides: Partial<AuditEvent> & Record<string, unknown> = {},
): AuditEvent {
  return buildEvent({ requestReceivedTimestamp: at, stageTimestamp: at, ...overrides });
}

/** A non-secret request (a pod list) that teaches the baseline an address, agent and hour. */
export function otherRequest(
  at: string,
  overrides: Partial<AuditEvent> & Record<string, unknown> = {},
): AuditEvent {
  return buildEvent({
    requestReceivedTimestamp: at,
    stageTimestamp: at,
    requestURI: '/api/v1/namespaces/default/pods',
    verb: 'list',
    objectRef: { resource: 'pods', namespace: 'default', apiVersion: 'v1' },
    ...overrides,
  });
}

export function serviceAccount(namespace: string, name: string) {
  return {
    username: `system:serviceaccount:${namespace}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

export function secretObject(namespace: string | undefined, name?: string) {
  const uri = `/api/v1${namespace ? `/namespaces/${namespace}` : ''}/secrets${name ? `/${name}` : ''}`;
  const objectRef: Record<string, string> = { resource: 'secrets', apiVersion: 'v1' };
  if (namespace) objectRef.namespace = namespace;
  if (name) objectRef.name = name;
  return { requestURI: uri, objectRef };
}

export function run(
  events: AuditEvent[],
  policy: PolicyInput = {},
  cluster = 'prod',
): { findings: Finding[]; reports: Finding[]; engine: Engine } {
  const engine = createEngine({ policy: defaultPolicy(policy) });
  const reports = events.flatMap((event) => engine.process({ cluster, event }));
  reports.push(...engine.flush());
  // findings: each id as it finally is; reports: every revision, in the order they were made.
  return { findings: latestRevisions(reports), reports, engine };
}

export const byRule = (findings: Finding[], rule: Finding['rule']) => findings.filter((f) => f.rule === rule);

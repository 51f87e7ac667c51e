import { createHash } from 'node:crypto';
import {
  type AuditEvent,
  CHAIN_STEP_COPY,
  chainCopies,
  type Finding,
  partitionKey,
} from '@kaudit/audit-schema';
import { buildEvent } from '@kaudit/testkit';
import { latestRevisions } from '../src/emission';
import { createEngine, type Engine } from '../src/engine';
import { defaultPolicy, type Policy, type PolicyInput } from '../src/policy';

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

/**
 * The events as the pipeline sees them: split over `partitions` engines by partition key, with the
 * copies of chain steps the sink adds (audit-schema chain-copies.ts) after each original, the way the
 * sink produces them. Any hash will do for the test (the broker's is murmur2).
 */
export function runPartitioned(
  events: AuditEvent[],
  partitions: number,
  policy: Policy = defaultPolicy(),
  cluster = 'prod',
): { findings: Finding[]; engines: Engine[] } {
  const engines = Array.from({ length: partitions }, () => createEngine({ policy }));
  const of = (key: string) => engines[createHash('sha1').update(key).digest().readUInt32BE(0) % partitions]!;
  const reports: Finding[] = [];
  for (const event of events) {
    reports.push(...of(partitionKey(cluster, event)).process({ cluster, event }));
    const copies = chainCopies(cluster, event);
    const targets = copies.everyPartition ? engines : copies.keys.map(of);
    for (const engine of targets) reports.push(...engine.process({ cluster, event, copy: CHAIN_STEP_COPY }));
  }
  for (const engine of engines) reports.push(...engine.flush());
  return { findings: latestRevisions(reports), engines };
}

export const byRule = (findings: Finding[], rule: Finding['rule']) => findings.filter((f) => f.rule === rule);

/** A write request (create/update/patch) on any resource: a binding, a TokenRequest, a CSR. */
export function writeRequest(
  at: string,
  ref: { resource: string; namespace?: string; name?: string; subresource?: string; apiGroup?: string },
  overrides: Partial<AuditEvent> & Record<string, unknown> = {},
): AuditEvent {
  const group = ref.apiGroup ? `/apis/${ref.apiGroup}/v1` : '/api/v1';
  const path = [
    group,
    ref.namespace ? `namespaces/${ref.namespace}` : undefined,
    ref.resource,
    ref.name,
    ref.subresource,
  ]
    .filter(Boolean)
    .join('/');
  const objectRef: Record<string, string> = { resource: ref.resource, apiVersion: 'v1' };
  for (const key of ['namespace', 'name', 'subresource', 'apiGroup'] as const)
    if (ref[key]) objectRef[key] = ref[key];
  return buildEvent({
    requestReceivedTimestamp: at,
    stageTimestamp: at,
    requestURI: path,
    verb: 'create',
    objectRef,
    responseStatus: { code: 201 },
    ...overrides,
  });
}

const RBAC = 'rbac.authorization.k8s.io';

/** create clusterrolebindings/<name> (at Metadata level: no body). */
export function bindingCreate(
  at: string,
  name: string,
  overrides: Partial<AuditEvent> & Record<string, unknown> = {},
) {
  return writeRequest(at, { resource: 'clusterrolebindings', name, apiGroup: RBAC }, overrides);
}

/** create serviceaccounts/<name>/token in `namespace`: a TokenRequest. */
export function tokenRequest(
  at: string,
  namespace: string,
  name: string,
  overrides: Partial<AuditEvent> & Record<string, unknown> = {},
) {
  return writeRequest(at, { resource: 'serviceaccounts', namespace, name, subresource: 'token' }, overrides);
}

/** The authorization reason the API server writes for a request allowed by a ClusterRoleBinding. */
export function allowedBy(binding: string, role: string) {
  return {
    annotations: {
      'authorization.k8s.io/decision': 'allow',
      'authorization.k8s.io/reason': `RBAC: allowed by ClusterRoleBinding "${binding}" of ClusterRole "${role}" to User "x"`,
    },
  };
}

/** A service account's bound token: user.extra as the API server records it. */
export function podToken(
  namespace: string,
  name: string,
  pod: string,
  credentialId: string,
  node = 'worker-1',
) {
  const user = serviceAccount(namespace, name);
  return {
    ...user,
    extra: {
      'authentication.kubernetes.io/credential-id': [credentialId],
      'authentication.kubernetes.io/node-name': [node],
      'authentication.kubernetes.io/node-uid': ['6b1f0d3e-0000-4000-8000-000000000001'],
      'authentication.kubernetes.io/pod-name': [pod],
      'authentication.kubernetes.io/pod-uid': [`uid-${pod}`],
    },
  };
}

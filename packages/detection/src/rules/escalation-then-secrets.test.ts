import { loadSampleEvents } from '@kaudit/testkit';
import {
  allowedBy,
  bindingCreate,
  byRule,
  otherRequest,
  run,
  secretObject,
  secretRead,
  serviceAccount,
  tokenRequest,
  WARMUP,
  writeRequest,
} from '../../test/events';

describe('detection > rules > privilege-escalation-then-secrets', () => {
  const alice = { user: { username: 'alice@example.com', groups: ['system:authenticated'] } };
  const helper = serviceAccount('default', 'backup-helper');
  const warm = otherRequest(WARMUP);

  it('binding, token, then the minted account reads: one finding telling the chain in order, every auditID', () => {
    const binding = bindingCreate('2026-01-12T02:47:12Z', 'backup-helper-admin', alice);
    const token = tokenRequest('2026-01-12T02:47:40Z', 'default', 'backup-helper', alice);
    const read = secretRead('2026-01-12T02:49:31Z', {
      user: helper,
      verb: 'list',
      ...secretObject(undefined),
      ...allowedBy('backup-helper-admin', 'cluster-admin'),
    });
    const [finding, ...rest] = byRule(
      run([warm, binding, token, read]).findings,
      'privilege-escalation-then-secrets',
    );
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      severity: 'high',
      identity: { username: helper.username },
      auditIDs: [binding.auditID, token.auditID, read.auditID],
      mitre: ['T1098', 'T1078', 'T1552.007'],
      details: { stepActors: ['alice@example.com'] },
    });
    expect(finding!.summary).toBe(
      'alice@example.com created ClusterRoleBinding backup-helper-admin (its role and subjects are not logged at Metadata level) at 2026-01-12T02:47:12.000Z; then alice@example.com minted a token for system:serviceaccount:default:backup-helper at 2026-01-12T02:47:40.000Z; then system:serviceaccount:default:backup-helper read secrets in all namespaces (allowed by ClusterRoleBinding/backup-helper-admin of ClusterRole/cluster-admin) at 2026-01-12T02:49:31.000Z.',
    );
  });

  it('the same identity: privilege, then its own read; arrival order does not matter', () => {
    const binding = bindingCreate('2026-01-12T10:00:00Z', 'me-admin', alice);
    const read = secretRead('2026-01-12T10:01:00Z', alice);
    for (const events of [
      [warm, binding, read],
      [warm, read, binding],
    ]) {
      const [finding] = byRule(run(events).findings, 'privilege-escalation-then-secrets');
      expect(finding?.auditIDs).toEqual([binding.auditID, read.auditID]);
    }
  });

  it('a RoleBinding named "name/namespace" in the authorization reason is the binding team-a/secret-readers', () => {
    const binding = writeRequest(
      '2026-01-12T10:00:00Z',
      {
        resource: 'rolebindings',
        namespace: 'team-a',
        name: 'secret-readers',
        apiGroup: 'rbac.authorization.k8s.io',
      },
      alice,
    );
    const reason =
      'RBAC: allowed by RoleBinding "secret-readers/team-a" of ClusterRole "kaudit-stack:secret-reader" to User "bob@example.com"';
    const read = secretRead('2026-01-12T10:05:00Z', {
      user: { username: 'bob@example.com', groups: [] },
      annotations: { 'authorization.k8s.io/reason': reason },
      ...secretObject('team-a', 'db-password'),
    });
    const [finding] = byRule(run([warm, binding, read]).findings, 'privilege-escalation-then-secrets');
    expect(finding!.summary).toMatch(
      /created RoleBinding team-a\/secret-readers .*then bob@example\.com read secret team-a\/db-password \(allowed by RoleBinding\/team-a\/secret-readers of ClusterRole\/kaudit-stack:secret-reader\)/,
    );
  });

  it('a read through the binding (authorization reason) links even without a token or impersonation', () => {
    const binding = bindingCreate('2026-01-12T10:00:00Z', 'ops-admin', alice);
    const read = secretRead('2026-01-12T10:05:00Z', {
      user: serviceAccount('ops', 'robot'),
      ...allowedBy('ops-admin', 'cluster-admin'),
    });
    expect(byRule(run([warm, binding, read]).findings, 'privilege-escalation-then-secrets')).toHaveLength(1);
  });

  it('an impersonated read: the impersonator gained privilege first', () => {
    const binding = bindingCreate('2026-01-12T10:00:00Z', 'x', alice);
    const read = secretRead('2026-01-12T10:02:00Z', {
      ...alice,
      impersonatedUser: { username: 'bob@example.com', groups: [] },
    });
    const [finding] = byRule(run([warm, binding, read]).findings, 'privilege-escalation-then-secrets');
    expect(finding).toMatchObject({
      identity: { username: 'bob@example.com', impersonator: 'alice@example.com' },
    });
    expect(finding!.summary).toMatch(/then bob@example\.com \(impersonated by alice@example\.com\) read/);
  });

  it('negative: no privilege step (only a token), another identity unrelated, a refused binding, a denied read', () => {
    const token = tokenRequest('2026-01-12T10:00:00Z', 'default', 'backup-helper', alice);
    const helperRead = secretRead('2026-01-12T10:01:00Z', { user: helper });
    expect(byRule(run([warm, token, helperRead]).findings, 'privilege-escalation-then-secrets')).toEqual([]);
    const binding = bindingCreate('2026-01-12T10:00:00Z', 'x', alice);
    const bob = secretRead('2026-01-12T10:01:00Z', { user: { username: 'bob@example.com', groups: [] } });
    expect(byRule(run([warm, binding, bob]).findings, 'privilege-escalation-then-secrets')).toEqual([]);
    const refused = bindingCreate('2026-01-12T10:00:00Z', 'x', { ...alice, responseStatus: { code: 403 } });
    expect(
      byRule(
        run([warm, refused, secretRead('2026-01-12T10:01:00Z', alice)]).findings,
        'privilege-escalation-then-secrets',
      ),
    ).toEqual([]);
    const denied = secretRead('2026-01-12T10:01:00Z', { ...alice, responseStatus: { code: 403 } });
    expect(byRule(run([warm, binding, denied]).findings, 'privilege-escalation-then-secrets')).toEqual([]);
  });

  it('boundary: a read exactly one window (1h) after the step still links; a millisecond later does not', () => {
    const binding = bindingCreate('2026-01-12T10:00:00.000Z', 'x', alice);
    const at = (t: string) =>
      byRule(run([warm, binding, secretRead(t, alice)]).findings, 'privilege-escalation-then-secrets');
    expect(at('2026-01-12T11:00:00.000Z')).toHaveLength(1);
    expect(at('2026-01-12T11:00:00.001Z')).toEqual([]);
  });

  it('with the body logged, only powerful roles and roles granting secrets are privilege (real OpenShift events)', () => {
    // openshift-network-operator patches Role/RoleBinding prometheus-k8s (services, endpoints, pods): not privilege.
    const patches = loadSampleEvents('openshift/ocp-4.12-audit.jsonl').filter(
      (e) => e.objectRef?.name === 'prometheus-k8s' && e.verb === 'patch',
    );
    expect(patches.map((e) => e.objectRef?.resource).sort()).toEqual(['rolebindings', 'roles']);
    const actor = { user: patches[0]!.user };
    const after = (t: string) => secretRead(t, { ...actor, ...secretObject('openshift-multus', 'x') });
    const at = patches[0]!.requestReceivedTimestamp;
    const read = after(new Date(Date.parse(at) + 60_000).toISOString());
    expect(byRule(run([...patches, read]).findings, 'privilege-escalation-then-secrets')).toEqual([]);
    // The same binding to cluster-admin is.
    const admin = {
      ...patches.find((e) => e.objectRef?.resource === 'rolebindings')!,
      requestObject: {
        roleRef: { kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'User', name: 'mallory' }],
      },
    };
    const [finding] = byRule(run([admin, read]).findings, 'privilege-escalation-then-secrets');
    expect(finding!.summary).toMatch(
      /patched RoleBinding openshift-multus\/prometheus-k8s to ClusterRole\/cluster-admin for mallory/,
    );
    const secretsRole = writeRequest(
      at,
      { resource: 'clusterroles', name: 'reader', apiGroup: 'rbac.authorization.k8s.io' },
      { ...actor, requestObject: { rules: [{ resources: ['secrets'], verbs: ['get'] }] } },
    );
    expect(byRule(run([secretsRole, read]).findings, 'privilege-escalation-then-secrets')).toHaveLength(1);
  });

  it('real Metadata-level RBAC writes (audit2rbac) are steps; control-plane identities in ignoreActors are not', () => {
    const writes = loadSampleEvents('audit2rbac/demo-v1beta1.jsonl').filter(
      (e) =>
        e.objectRef?.resource === 'clusterrolebindings' &&
        e.verb === 'create' &&
        e.stage === 'ResponseComplete',
    );
    const first = writes[0]!;
    const read = secretRead(new Date(Date.parse(first.requestReceivedTimestamp) + 1000).toISOString(), {
      user: first.user,
    });
    const [finding] = byRule(run([first, read]).findings, 'privilege-escalation-then-secrets');
    expect(finding!.summary).toMatch(/^system:admin created ClusterRoleBinding audit2rbac:/);
    const controller = { ...first, user: { username: 'system:kube-controller-manager', groups: [] } };
    const controllerRead = { ...read, user: controller.user };
    expect(byRule(run([controller, controllerRead]).findings, 'privilege-escalation-then-secrets')).toEqual(
      [],
    );
  });
});

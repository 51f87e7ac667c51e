import { loadSampleEvents } from '@kaudit/testkit';
import { MASTERS_CSR, NODE_CSR, PERSON_CSR } from '../../test/csrs';
import { bindingCreate, byRule, run, serviceAccount, tokenRequest, writeRequest } from '../../test/events';

describe('detection > rules > credential-minted', () => {
  const alice = { user: { username: 'alice@example.com', groups: ['system:authenticated'] } };
  const at = '2026-01-12T10:00:00Z';

  it.each([
    [
      'a token for another account',
      tokenRequest(at, 'ci', 'deployer', alice),
      'medium',
      /minted a token \(TokenRequest\) for system:serviceaccount:ci:deployer: whoever/,
    ],
    [
      'a token for a kube-system account (sensitiveServiceAccounts)',
      tokenRequest(at, 'kube-system', 'replicaset-controller', alice),
      'high',
      /a sensitive account/,
    ],
  ])('%s', (_name, event, severity, summary) => {
    const [finding] = byRule(run([event]).findings, 'credential-minted');
    expect(finding).toMatchObject({
      severity,
      mitre: ['T1528', 'T1098'],
      objects: [{ namespace: event.objectRef!.namespace, name: event.objectRef!.name }],
    });
    expect(finding!.summary).toMatch(summary);
  });

  it('a token for an account a binding just named is high and says who made it powerful', () => {
    const binding = bindingCreate('2026-01-12T09:59:00Z', 'x', {
      ...alice,
      requestObject: {
        roleRef: { kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', namespace: 'ci', name: 'deployer' }],
      },
    });
    const [finding] = byRule(
      run([binding, tokenRequest(at, 'ci', 'deployer', alice)]).findings,
      'credential-minted',
    );
    expect(finding).toMatchObject({ severity: 'high' });
    expect(finding!.summary).toMatch(
      /which alice@example\.com just made powerful \(created ClusterRoleBinding x to ClusterRole\/cluster-admin/,
    );
  });

  it('negative: its own token, a kubelet minting its pods tokens, a refused TokenRequest', () => {
    const sa = serviceAccount('ci', 'deployer');
    expect(
      byRule(run([tokenRequest(at, 'ci', 'deployer', { user: sa })]).findings, 'credential-minted'),
    ).toEqual([]);
    const kubelet = { user: { username: 'system:node:worker-1', groups: ['system:nodes'] } };
    expect(byRule(run([tokenRequest(at, 'ci', 'deployer', kubelet)]).findings, 'credential-minted')).toEqual(
      [],
    );
    expect(
      byRule(
        run([tokenRequest(at, 'ci', 'deployer', { ...alice, responseStatus: { code: 403 } })]).findings,
        'credential-minted',
      ),
    ).toEqual([]);
  });

  it('a CSR approved by the identity that created it is high; approved by someone else it is not', () => {
    const csr = { resource: 'certificatesigningrequests', name: 'csr-x', apiGroup: 'certificates.k8s.io' };
    const create = writeRequest('2026-01-12T10:00:00Z', csr, alice);
    const approve = (who: typeof alice, t = '2026-01-12T10:01:00Z') =>
      writeRequest(
        t,
        { ...csr, subresource: 'approval' },
        { ...who, verb: 'update', responseStatus: { code: 200 } },
      );
    const [finding] = byRule(run([create, approve(alice)]).findings, 'credential-minted');
    expect(finding).toMatchObject({ severity: 'high', mitre: ['T1528', 'T1098', 'T1649'] });
    expect(finding!.summary).toMatch(/approved the CertificateSigningRequest csr-x that it created itself/);
    const bob = { user: { username: 'bob@example.com', groups: [] } };
    expect(byRule(run([create, approve(bob)]).findings, 'credential-minted')).toEqual([]);
    // Boundary: created more than the window (1h) before its approval: forgotten.
    expect(
      byRule(run([create, approve(alice, '2026-01-12T11:00:01Z')]).findings, 'credential-minted'),
    ).toEqual([]);
    // With the body logged, the approval says who asked for it: another partition's creation still counts.
    const withBody = writeRequest(
      '2026-01-12T10:01:00Z',
      { ...csr, subresource: 'approval' },
      { ...alice, verb: 'update', requestObject: { spec: { username: 'alice@example.com' } } },
    );
    expect(byRule(run([withBody]).findings, 'credential-minted')).toHaveLength(1);
  });

  it('a CSR approved for system:masters is high whoever approves it; a node CSR only by an unexpected approver; a denial never', () => {
    const csr = { resource: 'certificatesigningrequests', name: 'csr-y', apiGroup: 'certificates.k8s.io' };
    const approval = (
      who: { user: { username: string; groups: string[] } },
      request: string,
      decision: 'Approved' | 'Denied' = 'Approved',
    ) =>
      writeRequest(
        '2026-01-12T10:01:00Z',
        { ...csr, subresource: 'approval' },
        {
          ...who,
          verb: 'update',
          responseStatus: { code: 200 },
          requestObject: {
            kind: 'CertificateSigningRequest',
            spec: { request, signerName: 'kubernetes.io/kube-apiserver-client', username: 'someone-else' },
            status: { conditions: [{ type: decision, status: 'True' }] },
          },
        },
      );
    const controller = { user: { username: 'system:kube-controller-manager', groups: [] } };
    const minted = (events: ReturnType<typeof approval>[]) =>
      byRule(run(events).findings, 'credential-minted');

    const [masters] = minted([approval(alice, MASTERS_CSR)]);
    expect(masters).toMatchObject({
      severity: 'high',
      details: { minted: ['certificate csr-y (CN=mallory, O=system:masters)'] },
    });
    expect(masters!.summary).toMatch(/for mallory in group system:masters/);
    expect(minted([approval(controller, MASTERS_CSR)])).toHaveLength(1);
    expect(minted([approval(alice, MASTERS_CSR, 'Denied')])).toEqual([]);

    const [node] = minted([approval(alice, NODE_CSR)]);
    expect(node!.summary).toMatch(/node credential system:node:worker-1/);
    expect(minted([approval(controller, NODE_CSR)])).toEqual([]);
    // An ordinary person's certificate approved by someone else: nothing to say.
    expect(minted([approval(alice, PERSON_CSR)])).toEqual([]);
  });

  it('a legacy service-account token Secret created (the real falco request, type logged at RequestResponse)', () => {
    const [real] = loadSampleEvents('falco-secrets/create_service_account_token_secret.requestresponse.json');
    // The real one is the controller manager's token controller doing its job (expectedMinters).
    expect(real!.user.username).toBe('system:kube-controller-manager');
    expect(byRule(run([real!]).findings, 'credential-minted')).toEqual([]);
    const event = { ...real!, ...alice };
    const findings = byRule(run([event]).findings, 'credential-minted');
    expect(findings).toHaveLength(1);
    expect(findings[0]!.summary).toMatch(/a legacy service-account token Secret: a token that never expires/);
    // At Metadata level the type is not logged: an ordinary Secret create says nothing.
    const { requestObject: _body, responseObject: _response, ...metadata } = event;
    expect(byRule(run([{ ...metadata, level: 'Metadata' }]).findings, 'credential-minted')).toEqual([]);
  });
});

import { loadSampleEvents } from '@kaudit/testkit';
import {
  byRule,
  otherRequest,
  podToken,
  run,
  secretObject,
  secretRead,
  serviceAccount,
} from '../../test/events';

describe('detection > rules > token-provenance', () => {
  const token = podToken('payments', 'api', 'api-7d9f-x2x9q', 'JTI=4c1e0b6a');
  const use = (at: string, ip: string, user = token) => otherRequest(at, { user, sourceIPs: [ip] });

  it('one credential id from two addresses, inside the cluster networks', () => {
    const { findings } = run(
      [use('2026-01-12T10:00:00Z', '10.1.2.3'), use('2026-01-12T10:05:00Z', '10.7.7.7')],
      {
        network: { clusterCIDRs: ['10.0.0.0/8'] },
      },
    );
    const [finding, ...rest] = byRule(findings, 'token-provenance');
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      severity: 'high',
      sourceIP: '10.7.7.7',
      mitre: ['T1528', 'T1550.001'],
      details: { signals: ['credential-two-addresses'], addresses: ['10.1.2.3', '10.7.7.7'] },
    });
    expect(finding!.summary).toMatch(
      /token JTI=4c1e0b6a was used from 10\.7\.7\.7; it was first used from 10\.1\.2\.3/,
    );
    // The CIDR check cannot see it: both addresses are inside the cluster networks.
    expect(byRule(findings, 'secret-new-source-ip')).toEqual([]);
  });

  it("a pod's next token (new credential id) from an address the pod never had", () => {
    const rotated = podToken('payments', 'api', 'api-7d9f-x2x9q', 'JTI=99');
    const [finding] = byRule(
      run([use('2026-01-12T10:00:00Z', '10.1.2.3'), use('2026-01-12T11:00:00Z', '10.9.9.9', rotated)])
        .findings,
      'token-provenance',
    );
    expect(finding).toMatchObject({
      details: { signals: ['pod-address'], pod: 'api-7d9f-x2x9q (uid-api-7d9f-x2x9q)' },
    });
    expect(finding!.summary).toMatch(
      /bound to pod api-7d9f-x2x9q \(uid-api-7d9f-x2x9q\) on worker-1 was used from 10\.9\.9\.9, an address that pod never had \(it used 10\.1\.2\.3\)/,
    );
  });

  it('negative: the same address again, another pod of the account elsewhere, a refused request', () => {
    const other = podToken('payments', 'api', 'api-other', 'JTI=b');
    const events = [
      use('2026-01-12T10:00:00Z', '10.1.2.3'),
      use('2026-01-12T10:01:00Z', '10.1.2.3'),
      use('2026-01-12T10:02:00Z', '10.4.4.4', other),
    ];
    expect(byRule(run(events).findings, 'token-provenance')).toEqual([]);
    const refused = otherRequest('2026-01-12T10:03:00Z', {
      user: token,
      sourceIPs: ['10.8.8.8'],
      responseStatus: { code: 403 },
    });
    expect(
      byRule(run([use('2026-01-12T10:00:00Z', '10.1.2.3'), refused]).findings, 'token-provenance'),
    ).toEqual([]);
  });

  it('boundary: a token first used longer ago than baseline.sourceIPs.retention is forgotten', () => {
    const events = [
      use('2026-01-01T10:00:00Z', '10.1.2.3'),
      otherRequest('2026-01-20T10:00:00Z', { user: serviceAccount('payments', 'api') }),
      use('2026-02-05T10:00:00Z', '10.9.9.9'),
    ];
    expect(byRule(run(events).findings, 'token-provenance')).toEqual([]);
    const within = [use('2026-01-01T10:00:00Z', '10.1.2.3'), use('2026-01-30T10:00:00Z', '10.9.9.9')];
    expect(byRule(run(within).findings, 'token-provenance')).toHaveLength(1);
  });

  it('a legacy Secret-based token reading Secrets (annotation authentication.k8s.io/legacy-token) is medium', () => {
    const legacy = {
      user: serviceAccount('ci', 'deployer'),
      annotations: { 'authentication.k8s.io/legacy-token': 'ci/deployer-token-abcde' },
    };
    const [finding] = byRule(
      run([secretRead('2026-01-12T10:00:00Z', { ...legacy, ...secretObject('ci', 'x') })]).findings,
      'token-provenance',
    );
    expect(finding).toMatchObject({
      severity: 'medium',
      details: { signals: ['legacy-token'], legacyTokens: ['ci/deployer-token-abcde'] },
    });
    // Not a secret read: not this signal.
    expect(byRule(run([otherRequest('2026-01-12T10:00:00Z', legacy)]).findings, 'token-provenance')).toEqual(
      [],
    );
  });

  it("real OpenShift events: each pod's bound token (user.extra pod-name, pod-uid) from its own address says nothing", () => {
    const events = loadSampleEvents('openshift/ocp-4.12-audit.jsonl');
    const bound = events.filter(
      (e) => e.user.extra?.['authentication.kubernetes.io/pod-uid'] && (e.responseStatus?.code ?? 200) < 400,
    );
    expect(bound.length).toBeGreaterThan(10);
    expect(byRule(run(events).findings, 'token-provenance')).toEqual([]);
    // The first of them (a successful request, so its address was learned) replayed from another address.
    const stolen = {
      ...bound[0]!,
      auditID: 'stolen-1',
      sourceIPs: ['10.99.0.1'],
      requestReceivedTimestamp: new Date(
        Date.parse(bound[0]!.requestReceivedTimestamp) + 60_000,
      ).toISOString(),
    };
    const [finding] = byRule(run([...events, stolen]).findings, 'token-provenance');
    expect(finding).toMatchObject({
      identity: { username: bound[0]!.user.username },
      details: { signals: ['pod-address'] },
    });
  });
});

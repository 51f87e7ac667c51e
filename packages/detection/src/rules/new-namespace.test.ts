import {
  byRule,
  otherRequest,
  run,
  secretObject,
  secretRead,
  serviceAccount,
  WARMUP,
} from '../../test/events';

describe('detection > rules > secret-new-namespace', () => {
  const warm = otherRequest(WARMUP);
  const known = secretRead('2026-01-02T10:00:00Z', secretObject('shop', 'db'));
  const read = (at: string, namespace: string, user?: { username: string; groups: string[] }) =>
    secretRead(at, { ...(user && { user }), ...secretObject(namespace, 'x') });

  it('a known identity reading a namespace it never read is low, and says what was new', () => {
    const [finding, ...rest] = byRule(
      run([warm, known, read('2026-01-12T10:00:00Z', 'payments')]).findings,
      'secret-new-namespace',
    );
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      severity: 'low',
      details: { newNamespaces: ['payments'], knownNamespaces: ['shop'], weightedNewNamespaces: 1 },
      mitre: ['T1552.007', 'T1078'],
    });
    expect(finding!.summary).toMatch(
      /read secret payments\/x, a namespace whose Secrets it never read before; it read Secrets in shop/,
    );
  });

  it('is silent for a namespace already read, during learning, and for an identity whose baseline is young', () => {
    expect(
      byRule(run([warm, known, read('2026-01-12T10:00:00Z', 'shop')]).findings, 'secret-new-namespace'),
    ).toEqual([]);
    // Learning period: the cluster was first seen on WARMUP; the 5th is inside the 7 days.
    expect(
      byRule(run([warm, known, read('2026-01-05T10:00:00Z', 'payments')]).findings, 'secret-new-namespace'),
    ).toEqual([]);
    // matureAfter (7d): an identity first seen on the 10th is not "known" on the 12th.
    const young = { username: 'newcomer@example.com', groups: ['system:authenticated'] };
    const events = [
      warm,
      read('2026-01-10T10:00:00Z', 'shop', young),
      read('2026-01-12T10:00:00Z', 'payments', young),
    ];
    expect(byRule(run(events).findings, 'secret-new-namespace')).toEqual([]);
  });

  it('low-and-slow: one read every 8 minutes across namespaces grows to high (and never trips enumeration)', () => {
    const reads = ['a', 'b', 'c', 'd'].map((ns, i) =>
      read(new Date(Date.parse('2026-01-12T10:00:00Z') + i * 8 * 60_000).toISOString(), ns),
    );
    const findings = byRule(run([warm, known, ...reads]).findings, 'secret-new-namespace');
    // 10:00 and 10:08 in the 10:00 window; 10:16 and 10:24 in the 10:10 and 10:20 windows.
    expect(findings.map((f) => [f.severity, f.details!.weightedNewNamespaces])).toEqual([
      ['medium', 2],
      ['medium', 3],
      ['high', 4],
    ]);
    expect(byRule(run([warm, known, ...reads]).findings, 'secret-enumeration')).toEqual([]);
  });

  it('boundary: a new namespace read just outside the 1h window does not count', () => {
    const early = read('2026-01-12T09:00:00Z', 'a');
    const late = read('2026-01-12T10:00:00Z', 'b');
    const atEdge = byRule(run([warm, known, early, late]).findings, 'secret-new-namespace');
    expect(atEdge.map((f) => f.details!.weightedNewNamespaces)).toEqual([1, 1]);
    const inside = byRule(
      run([warm, known, early, read('2026-01-12T09:59:59Z', 'b')]).findings,
      'secret-new-namespace',
    );
    expect(inside.map((f) => f.details!.weightedNewNamespaces)).toEqual([1, 2]);
  });

  it('a service account outside its own namespace weighs serviceAccountWeight; nodes are not judged', () => {
    const sa = serviceAccount('ci', 'deployer');
    const events = [warm, secretRead('2026-01-02T10:00:00Z', { user: sa, ...secretObject('ci', 'token') })];
    const [outside] = byRule(
      run([...events, read('2026-01-12T10:00:00Z', 'prod', sa)]).findings,
      'secret-new-namespace',
    );
    expect(outside).toMatchObject({ severity: 'medium', details: { weightedNewNamespaces: 2 } });
    expect(outside!.summary).toMatch(/outside its own namespace ci/);
    const node = { username: 'system:node:worker-1', groups: ['system:nodes'] };
    const nodeEvents = [
      warm,
      read('2026-01-02T10:00:00Z', 'shop', node),
      read('2026-01-12T10:00:00Z', 'prod', node),
    ];
    expect(byRule(run(nodeEvents).findings, 'secret-new-namespace')).toEqual([]);
  });
});

import {
  byRule,
  otherRequest,
  run,
  secretObject,
  secretRead,
  serviceAccount,
  WARMUP,
} from '../../test/events';
import type { PolicyInput } from '../policy';

describe('detection > rules > secret-canary-read', () => {
  const canaries: PolicyInput = {
    allowList: { identities: ['alice@example.com'], namespaces: ['kube-system'] },
    rules: {
      'secret-canary-read': {
        canaries: [
          { namespace: 'kube-system', name: 'etcd-backup-credentials' },
          { namespace: 'payments', name: 'legacy-*' },
        ],
        allowList: { identities: ['system:serviceaccount:cert-manager:cert-manager'] },
      },
    },
  };

  it('a get is critical with no learning period and despite the global allow-list', () => {
    // The cluster's first minute (learning) and alice is allow-listed globally: the canary still speaks.
    const [finding] = byRule(
      run([secretRead(WARMUP, secretObject('kube-system', 'etcd-backup-credentials'))], canaries).findings,
      'secret-canary-read',
    );
    expect(finding).toMatchObject({
      severity: 'critical',
      details: { canaries: ['kube-system/etcd-backup-credentials'], listed: false },
    });
    expect(finding!.summary).toBe(
      'alice@example.com read the canary secret kube-system/etcd-backup-credentials: no one has a reason to read it.',
    );
  });

  it('name globs, lists of its namespace or of all namespaces (high), refused reads (medium)', () => {
    const cases: Array<[ReturnType<typeof secretRead>, string]> = [
      [secretRead('2026-01-12T10:00:00Z', secretObject('payments', 'legacy-stripe')), 'critical'],
      [secretRead('2026-01-12T10:00:00Z', { verb: 'list', ...secretObject('payments') }), 'high'],
      [secretRead('2026-01-12T10:00:00Z', { verb: 'watch', ...secretObject(undefined) }), 'high'],
      [
        secretRead('2026-01-12T10:00:00Z', {
          ...secretObject('payments', 'legacy-x'),
          responseStatus: { code: 403 },
        }),
        'medium',
      ],
    ];
    for (const [event, severity] of cases) {
      expect(byRule(run([event], canaries).findings, 'secret-canary-read').map((f) => f.severity)).toEqual([
        severity,
      ]);
    }
  });

  it('is silent for other secrets, another namespace of the same name, its own allow-list, lists with lists: false', () => {
    const silent = [
      secretRead('2026-01-12T10:00:00Z', secretObject('payments', 'stripe')),
      secretRead('2026-01-12T10:00:00Z', secretObject('default', 'etcd-backup-credentials')),
      secretRead('2026-01-12T10:00:00Z', {
        user: serviceAccount('cert-manager', 'cert-manager'),
        verb: 'watch',
        ...secretObject(undefined),
      }),
      secretRead('2026-01-12T10:00:00Z', { verb: 'list', ...secretObject('shop') }),
    ];
    for (const event of silent)
      expect(byRule(run([otherRequest(WARMUP), event], canaries).findings, 'secret-canary-read')).toEqual([]);
    const noLists: PolicyInput = {
      rules: { 'secret-canary-read': { canaries: [{ namespace: 'payments', name: 'x' }], lists: false } },
    };
    expect(
      byRule(
        run([secretRead('2026-01-12T10:00:00Z', { verb: 'list', ...secretObject('payments') })], noLists)
          .findings,
        'secret-canary-read',
      ),
    ).toEqual([]);
  });

  it('no canaries configured: nothing', () => {
    expect(
      byRule(
        run([secretRead('2026-01-12T10:00:00Z', secretObject('kube-system', 'etcd-backup-credentials'))])
          .findings,
        'secret-canary-read',
      ),
    ).toEqual([]);
  });
});

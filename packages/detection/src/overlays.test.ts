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
} from '../test/events';
import { latestRevisions } from './emission';
import { createEngine } from './engine';
import { defaultPolicy, PolicyError, type PolicyInput, policyForCluster } from './policy';

describe('detection > policy > cluster overlays', () => {
  const fleet: PolicyInput = {
    timezone: 'Europe/Berlin',
    network: { clusterCIDRs: ['10.0.0.0/8'] },
    clusters: {
      'us-*': {
        timezone: 'America/New_York',
        network: { clusterCIDRs: ['100.64.0.0/10'] },
        allowList: { identities: ['backup@example.com'] },
      },
      'us-east-1': {
        businessHours: { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat'], start: '07:00', end: '20:00' },
      },
    },
  };

  it('every matching overlay applies in order; other clusters keep the global policy object', () => {
    const policy = defaultPolicy(fleet);
    expect(policyForCluster(policy, 'eu-prod')).toBe(policy);
    const us = policyForCluster(policy, 'us-east-1');
    expect(us).toMatchObject({ timezone: 'America/New_York', network: { clusterCIDRs: ['100.64.0.0/10'] } });
    expect(us.businessHours).toMatchObject({ start: 420, end: 1200 });
    expect(us.allowList.identities).toEqual(['backup@example.com']);
    expect(policy.allowList.identities).toEqual([]);
  });

  it('rejects a misspelt overlay key with its path', () => {
    expect(() => defaultPolicy({ clusters: { 'x-*': { timezon: 'UTC' } } as never })).toThrow(PolicyError);
    expect(() => defaultPolicy({ clusters: { 'x-*': { timezone: 'Mars/Olympus' } } })).toThrow(
      /clusters\.x-\*\.timezone/,
    );
  });

  it('two clusters, the same identity name: separate baselines, each judged by its own zone and networks', () => {
    const engine = createEngine({ policy: defaultPolicy(fleet) });
    const reports = [];
    const both = (event: ReturnType<typeof secretRead>) => {
      for (const cluster of ['eu-prod', 'us-east-1']) reports.push(...engine.process({ cluster, event }));
    };
    const deployer = serviceAccount('ci', 'deployer');
    both(otherRequest(WARMUP, { user: deployer, sourceIPs: ['10.1.2.3'] }));
    // Only in eu-prod does alice learn 198.51.100.7.
    reports.push(
      ...engine.process({ cluster: 'eu-prod', event: otherRequest(WARMUP, { sourceIPs: ['198.51.100.7'] }) }),
    );
    // Monday 2026-01-12 16:00Z: 17:00 in Berlin (business hours), 11:00 in New York.
    // 23:30Z: 00:30 Tuesday in Berlin (off-hours), 18:30 Monday in New York (business hours).
    // The deployer's token from 10.9.9.9: inside eu-prod's cluster networks, outside us-east-1's.
    both(
      secretRead('2026-01-12T16:00:00Z', {
        user: deployer,
        sourceIPs: ['10.9.9.9'],
        ...secretObject('ci', 'x'),
      }),
    );
    both(secretRead('2026-01-12T23:30:00Z', { sourceIPs: ['198.51.100.7'] }));
    reports.push(...engine.flush());
    const findings = latestRevisions(reports);
    const of = (cluster: string, rule: Parameters<typeof byRule>[1]) =>
      byRule(findings, rule).filter((f) => f.cluster === cluster);
    const humanOffHours = (cluster: string) =>
      of(cluster, 'secret-off-hours').filter((f) => f.identity.username === 'alice@example.com');
    expect(humanOffHours('eu-prod').map((f) => f.details!.localTimes)).toEqual([
      ['tue 2026-01-13 00:30 GMT+1'],
    ]);
    expect(humanOffHours('us-east-1')).toEqual([]);
    // alice in us-east-1 has no known address to compare with (a separate baseline): no new-source-ip.
    expect(of('eu-prod', 'secret-new-source-ip').map((f) => f.identity.username)).toEqual([]);
    // The deployer's first read: in us-east-1 from outside its cluster networks (token theft), not in eu-prod.
    expect(of('eu-prod', 'secret-new-service-account')[0]).toMatchObject({
      severity: 'medium',
      details: { outsideClusterCIDRs: false },
    });
    const [us] = of('us-east-1', 'secret-new-service-account');
    expect(us).toMatchObject({ severity: 'high', details: { outsideClusterCIDRs: true } });
    expect(us!.summary).toMatch(/from 10\.9\.9\.9 outside the cluster networks 100\.64\.0\.0\/10/);
    expect(engine.snapshot(`eu-prod/alice@example.com`)!.ips).toHaveProperty(['198.51.100.7']);
    expect(Object.keys(engine.snapshot('us-east-1/alice@example.com')!.ips)).toEqual(['198.51.100.7']);
  });

  it("an overlay's allowList silences its clusters only", () => {
    const night = secretRead('2026-01-10T02:00:00Z', { user: { username: 'backup@example.com' } });
    expect(byRule(run([night], fleet, 'us-west-2').findings, 'secret-off-hours')).toEqual([]);
    expect(byRule(run([night], fleet, 'eu-prod').findings, 'secret-off-hours')).toHaveLength(1);
  });
});

describe('detection > engine > cross-identity order', () => {
  const alice = { user: { username: 'alice@example.com', groups: [] } };
  const robot = serviceAccount('ops', 'robot');

  it('a step of one identity is applied before a later read of another, even when one drain releases both', () => {
    const events = [
      otherRequest(WARMUP),
      // The reader has an earlier request, so it is due first when the watermark jumps past all three.
      otherRequest('2026-01-12T10:00:00Z', { user: robot }),
      bindingCreate('2026-01-12T10:00:10Z', 'ops-admin', alice),
      tokenRequest('2026-01-12T10:00:15Z', 'ops', 'robot', alice),
      secretRead('2026-01-12T10:00:20Z', { user: robot, ...allowedBy('ops-admin', 'cluster-admin') }),
      otherRequest('2026-01-12T10:05:00Z'),
    ];
    for (const lateness of ['30s', '1s', '1h']) {
      const { findings } = run(events, { eventTime: { allowedLateness: lateness } });
      expect(byRule(findings, 'privilege-escalation-then-secrets').map((f) => f.auditIDs.length)).toEqual([
        3,
      ]);
    }
  });
});

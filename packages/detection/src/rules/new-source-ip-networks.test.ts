import { byRule, otherRequest, run, secretRead, WARMUP } from '../../test/events';
import type { PolicyInput } from '../policy';

describe('detection > rules > secret-new-source-ip > known networks', () => {
  const policy: PolicyInput = {
    network: { clusterCIDRs: ['10.0.0.0/8'], organizationCIDRs: ['192.0.2.0/24'] },
  };
  const office = otherRequest(WARMUP, { sourceIPs: ['198.51.100.23'] });
  const at = '2026-01-12T10:00:00Z'; // Monday, business hours (UTC)
  const severityOf = (events: ReturnType<typeof secretRead>[], input = policy) =>
    byRule(run(events, input).findings, 'secret-new-source-ip').map((f) => f.severity);

  it("a person's new address in the /24 of a known one is low, and says which network", () => {
    const [finding] = byRule(
      run([office, secretRead(at, { sourceIPs: ['198.51.100.80'] })], policy).findings,
      'secret-new-source-ip',
    );
    expect(finding).toMatchObject({
      severity: 'low',
      details: { familiarNetwork: 'the /24 of 198.51.100.23' },
    });
    expect(finding!.summary).toMatch(
      /it is inside the \/24 of 198\.51\.100\.23, a network it already uses, and nothing else is unusual/,
    );
  });

  it('inside organizationCIDRs (office/VPN) is low; elsewhere medium', () => {
    expect(severityOf([office, secretRead(at, { sourceIPs: ['192.0.2.45'] })])).toEqual(['low']);
    expect(severityOf([office, secretRead(at, { sourceIPs: ['203.0.113.66'] })])).toEqual(['medium']);
  });

  it('boundary: the next /24 is not the same network; a /16 familiarPrefix makes it one', () => {
    expect(severityOf([office, secretRead(at, { sourceIPs: ['198.51.101.1'] })])).toEqual(['medium']);
    expect(
      severityOf([office, secretRead(at, { sourceIPs: ['198.51.101.1'] })], {
        ...policy,
        network: { ...policy.network, familiarPrefix: { ipv4: 16 } },
      }),
    ).toEqual(['low']);
  });

  it('other signals add up: off-hours or a new client keep it medium', () => {
    expect(
      severityOf([office, secretRead('2026-01-12T23:00:00Z', { sourceIPs: ['198.51.100.80'] })]),
    ).toEqual(['medium']);
    expect(
      severityOf([office, secretRead(at, { sourceIPs: ['198.51.100.80'], userAgent: 'curl/8.5.0' })]),
    ).toEqual(['medium']);
  });

  it('control-plane system: components inside the cluster networks are judged like nodes', () => {
    const manager = { username: 'system:kube-controller-manager', groups: [] };
    const known = otherRequest(WARMUP, { user: manager, sourceIPs: ['10.0.0.11'] });
    // A replaced control-plane node: a new address inside the cluster networks is not news.
    expect(severityOf([known, secretRead(at, { user: manager, sourceIPs: ['10.0.0.12'] })])).toEqual([]);
    // Its credential from outside them is token theft.
    expect(severityOf([known, secretRead(at, { user: manager, sourceIPs: ['203.0.113.9'] })])).toEqual([
      'high',
    ]);
  });
});

import { FindingSchema } from '@kaudit/audit-schema';
import {
  byRule,
  otherRequest,
  run,
  secretObject,
  secretRead,
  serviceAccount,
  WARMUP,
} from '../../test/events';
import { createEngine, type EngineState } from '../engine';
import { defaultPolicy, type PolicyInput } from '../policy';

const berlin: PolicyInput = { timezone: 'Europe/Berlin', network: { clusterCIDRs: ['10.0.0.0/8'] } };

describe('detection > rules > secret-off-hours', () => {
  it.each([
    ['Monday 10:00 Berlin', '2026-01-12T09:00:00Z', 0],
    ['Saturday 10:00 Berlin (weekend)', '2026-01-10T09:00:00Z', 1],
    ['Tuesday 00:00 Berlin (midnight)', '2026-01-12T23:00:00Z', 1],
    ['Monday 08:30 CEST, the day after DST starts (06:30Z)', '2026-03-30T06:30:00Z', 0],
    ['Friday 07:30 CET, before DST (06:30Z)', '2026-03-27T06:30:00Z', 1],
    ['Christmas, a holiday, at noon', '2026-12-25T11:00:00Z', 1],
  ])('human at %s', (_name, at, expected) => {
    const { findings } = run([secretRead(at)], { ...berlin, businessHours: { holidays: ['2026-12-25'] } });
    const offHours = byRule(findings, 'secret-off-hours');
    expect(offHours).toHaveLength(expected);
    if (expected) {
      expect(offHours[0]).toMatchObject({
        severity: 'medium',
        identity: { username: 'alice@example.com', kind: 'user' },
      });
      expect(offHours[0]!.summary).toMatch(
        /outside business hours \(mon,tue,wed,thu,fri 08:00-19:00 Europe\/Berlin/,
      );
    }
  });

  it('a night shift (22:00-06:00, spanning midnight) reads secrets at 03:00 without a finding, at noon with one', () => {
    const nightShift: PolicyInput = { ...berlin, businessHours: { start: '22:00', end: '06:00' } };
    const { findings } = run(
      [secretRead('2026-01-13T02:00:00Z'), secretRead('2026-01-13T11:00:00Z')],
      nightShift,
    );
    const [finding, ...rest] = byRule(findings, 'secret-off-hours');
    expect(rest).toEqual([]);
    expect(finding!.summary).toMatch(
      /at tue 2026-01-13 12:00 GMT\+1, outside business hours \(mon,tue,wed,thu,fri 22:00-06:00 \(overnight\) Europe\/Berlin\)/,
    );
  });

  it('judges humans during the learning period too (off hours is not a "new" rule)', () => {
    const { findings } = run([secretRead('2026-01-03T09:00:00Z')], berlin);
    expect(byRule(findings, 'secret-off-hours')).toHaveLength(1);
  });

  it('names the impersonator when an admin impersonates a user off hours', () => {
    const event = secretRead('2026-01-10T02:00:00Z', {
      user: { username: 'system:admin', groups: ['system:masters'] },
      impersonatedUser: { username: 'bob', groups: ['system:authenticated'] },
    });
    const [finding] = byRule(run([event], berlin).findings, 'secret-off-hours');
    expect(finding?.identity).toMatchObject({ username: 'bob', impersonator: 'system:admin' });
  });

  const daily = (user: { username: string; groups: string[] }, hourUtc: number, days = 10) =>
    Array.from({ length: days }, (_, day) =>
      secretRead(`2026-01-${String(1 + day).padStart(2, '0')}T${String(hourUtc).padStart(2, '0')}:00:00Z`, {
        user,
        sourceIPs: ['10.1.0.5'],
        ...secretObject('ci', 'registry'),
      }),
    );

  it('a CI account that always runs at 02:00 is normal at 02:00', () => {
    const ci = serviceAccount('ci', 'nightly');
    const { findings } = run(
      [...daily(ci, 1), secretRead('2026-01-13T01:10:00Z', { user: ci, ...secretObject('ci', 'registry') })],
      berlin,
    );
    expect(byRule(findings, 'secret-off-hours')).toEqual([]);
  });

  it('a controller that never ran at 02:00 and suddenly does is reported', () => {
    const controller = serviceAccount('ops', 'controller');
    const events = [
      ...daily(controller, 10),
      secretRead('2026-01-13T01:00:00Z', { user: controller, ...secretObject('ci', 'registry') }),
    ];
    const [finding, ...rest] = byRule(run(events, berlin).findings, 'secret-off-hours');
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      severity: 'medium',
      identity: { kind: 'serviceaccount', namespace: 'ops' },
    });
    expect(finding!.summary).toMatch(
      /an hour it was never active in before \(learned hours 11h, Europe\/Berlin\)/,
    );
    expect(finding!.details).toMatchObject({ learnedHours: [11], toleranceHours: 1 });
  });

  describe('learned hours age out (baseline.hours.retention)', () => {
    const controller = serviceAccount('ops', 'controller');
    const at = (day: number, hourUtc: number) =>
      secretRead(new Date(Date.UTC(2026, 0, 1 + day, hourUtc)).toISOString(), {
        user: controller,
        sourceIPs: ['10.1.0.5'],
        ...secretObject('ops', 'config'),
      });
    // Ten nights at 02:00 Berlin, then six weeks at 11:00 only, then 02:00 again.
    const events = [
      ...Array.from({ length: 10 }, (_, day) => at(day, 1)),
      ...Array.from({ length: 46 }, (_, day) => at(10 + day, 10)),
      at(56, 1),
    ];
    it.each([
      ['forgotten after 30 days unused (default)', {}, 1],
      ['kept with a 90-day retention', { baseline: { hours: { retention: '90d' } } }, 0],
    ])('an hour %s', (_name, policy, expected) => {
      const { findings, engine } = run(events, { ...berlin, ...policy });
      // (The move to 11:00 on 11 January is itself reported; only the return to 02:00 is looked at.)
      const offHours = byRule(findings, 'secret-off-hours').filter((f) => f.firstSeen >= '2026-02');
      expect(offHours).toHaveLength(expected);
      if (expected) {
        expect(offHours[0]).toMatchObject({ details: { learnedHours: [11] } });
        expect(offHours[0]!.firstSeen).toBe('2026-02-26T01:00:00.000Z');
      }
      // Relearned either way: 02:00 is known again after the read.
      expect(engine.snapshot('prod/system:serviceaccount:ops:controller')!.hoursSeen).toMatchObject({
        2: Date.parse('2026-02-26T01:00:00Z'),
      });
    });

    it('state from before hours had a last-seen time ages from the last request', () => {
      const first = run(events.slice(0, 10), berlin).engine;
      const legacy = JSON.parse(JSON.stringify(first.snapshot())) as EngineState;
      for (const state of Object.values(legacy.identities)) delete (state as Partial<typeof state>).hoursSeen;
      const restored = createEngine({ policy: defaultPolicy(berlin), state: legacy });
      expect(restored.snapshot('prod/system:serviceaccount:ops:controller')!.hoursSeen).toEqual({
        2: Date.parse('2026-01-10T01:00:00Z'),
      });
    });
  });

  it('tolerates an hour next to a learned one, and ignores immature baselines', () => {
    const controller = serviceAccount('ops', 'controller');
    const nextHour = run(
      [...daily(controller, 10), secretRead('2026-01-13T11:30:00Z', { user: controller })],
      berlin,
    );
    expect(byRule(nextHour.findings, 'secret-off-hours')).toEqual([]);
    const young = run(
      [...daily(controller, 10, 3), secretRead('2026-01-04T01:00:00Z', { user: controller })],
      {
        ...berlin,
        learningPeriod: '1d',
      },
    );
    expect(byRule(young.findings, 'secret-off-hours')).toEqual([]);
  });
});

describe('detection > rules > secret-new-source-ip', () => {
  const known = otherRequest(WARMUP, { sourceIPs: ['203.0.113.10'] });

  it('reports a human reading from an address never seen for them, naming the known ones', () => {
    const { findings } = run([known, secretRead('2026-01-12T10:00:00Z', { sourceIPs: ['198.51.100.7'] })]);
    const [finding] = byRule(findings, 'secret-new-source-ip');
    expect(finding).toMatchObject({ severity: 'medium', sourceIP: '198.51.100.7' });
    expect(finding!.summary).toBe(
      'alice@example.com read secrets from 198.51.100.7, an address never seen for it; known addresses: 203.0.113.10.',
    );
  });

  it.each([
    ['the known address', ['203.0.113.10'], {}, 0],
    ['a known address behind a spoofed X-Forwarded-For', ['6.6.6.6', '203.0.113.10'], {}, 0],
    ['a new address that prepends a known one (last entry wins)', ['203.0.113.10', '198.51.100.7'], {}, 1],
    [
      'a new address behind a trusted proxy',
      ['198.51.100.7', '192.0.2.1'],
      { network: { trustedProxies: ['192.0.2.1'] } },
      1,
    ],
    [
      'a known address behind a trusted proxy',
      ['203.0.113.10', '192.0.2.1'],
      { network: { trustedProxies: ['192.0.2.1'] } },
      0,
    ],
  ])('%s', (_name, sourceIPs, policy, expected) => {
    const { findings } = run([known, secretRead('2026-01-12T10:00:00Z', { sourceIPs })], policy);
    expect(byRule(findings, 'secret-new-source-ip')).toHaveLength(expected);
  });

  it('stays silent during the learning period and on denied requests', () => {
    const learning = run([known, secretRead('2026-01-03T10:00:00Z', { sourceIPs: ['198.51.100.7'] })]);
    expect(byRule(learning.findings, 'secret-new-source-ip')).toEqual([]);
    const denied = run([
      known,
      secretRead('2026-01-12T10:00:00Z', { sourceIPs: ['198.51.100.7'], responseStatus: { code: 403 } }),
    ]);
    expect(byRule(denied.findings, 'secret-new-source-ip')).toEqual([]);
  });

  const sa = serviceAccount('payments', 'api');
  const podIP = (at: string, ip: string) =>
    secretRead(at, { user: sa, sourceIPs: [ip], ...secretObject('payments', 'db') });

  it('pod IP churn inside clusterCIDRs is not new', () => {
    const events = [
      podIP(WARMUP, '10.1.2.3'),
      podIP('2026-01-12T10:00:00Z', '10.9.9.9'),
      podIP('2026-01-12T11:00:00Z', '10.44.0.7'),
    ];
    expect(byRule(run(events, berlin).findings, 'secret-new-source-ip')).toEqual([]);
  });

  it('a service-account token used from outside clusterCIDRs is high severity', () => {
    const events = [podIP(WARMUP, '10.1.2.3'), podIP('2026-01-12T10:00:00Z', '198.51.100.7')];
    const [finding] = byRule(run(events, berlin).findings, 'secret-new-source-ip');
    expect(finding).toMatchObject({ severity: 'high', details: { outsideClusterCIDRs: true } });
    expect(finding!.summary).toMatch(/outside the cluster networks 10\.0\.0\.0\/8: possible token theft/);
  });

  describe('an address is known for secret reads only after knownAddressMinAge', () => {
    // Stolen credentials: `kubectl auth can-i --list` from the new address, then the Secrets.
    const canI = (at: string) =>
      otherRequest(at, {
        sourceIPs: ['198.51.100.7'],
        verb: 'create',
        requestURI: '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews',
        objectRef: {
          resource: 'selfsubjectrulesreviews',
          apiGroup: 'authorization.k8s.io',
          apiVersion: 'v1',
        },
        responseStatus: { code: 201 },
      });
    const read = (at: string) => secretRead(at, { sourceIPs: ['198.51.100.7'] });

    it("reports the attacker's read when the first request from the address was not a secret read", () => {
      const { findings } = run([known, canI('2026-01-12T02:41:07Z'), read('2026-01-12T02:41:15Z')]);
      const [finding, ...rest] = byRule(findings, 'secret-new-source-ip');
      expect(rest).toEqual([]);
      expect(finding).toMatchObject({
        severity: 'medium',
        sourceIP: '198.51.100.7',
        details: { newIPs: ['198.51.100.7'], knownIPs: ['203.0.113.10'], firstSeenBeforeMs: 8_000 },
      });
      expect(finding!.summary).toBe(
        'alice@example.com read secrets from 198.51.100.7, an address first seen for it only 8 seconds before, in requests that were not secret reads; known addresses: 203.0.113.10.',
      );
    });

    it.each([
      ['seen 59 minutes before: still new', '2026-01-12T09:01:00Z', {}, 1],
      ['seen an hour before: known', '2026-01-12T09:00:00Z', {}, 0],
      [
        'seen 5 minutes before with a 5m minimum age: known',
        '2026-01-12T09:55:00Z',
        { network: { knownAddressMinAge: '5m' } },
        0,
      ],
      [
        'minimum age 0 (learn at once, the old behaviour)',
        '2026-01-12T09:59:59Z',
        { network: { knownAddressMinAge: 0 } },
        0,
      ],
    ])('%s', (_name, seenAt, policy, expected) => {
      const { findings } = run([known, canI(seenAt), read('2026-01-12T10:00:00Z')], policy);
      expect(byRule(findings, 'secret-new-source-ip')).toHaveLength(expected);
    });

    it('reports the address once: a later secret read from it (next window, within the hour) is known', () => {
      const { findings } = run([
        known,
        canI('2026-01-12T10:00:00Z'),
        read('2026-01-12T10:01:00Z'),
        read('2026-01-12T10:25:00Z'),
      ]);
      expect(byRule(findings, 'secret-new-source-ip')).toHaveLength(1);
    });

    it('keeps addresses learned by state from before knownAddressMinAge existed', () => {
      const policy = defaultPolicy();
      const before = createEngine({ policy });
      before.process({
        cluster: 'prod',
        event: otherRequest('2026-01-12T09:59:00Z', { sourceIPs: ['198.51.100.7'] }),
      });
      before.flush();
      const legacy = JSON.parse(JSON.stringify(before.snapshot())) as EngineState;
      for (const state of Object.values(legacy.identities))
        delete (state as Partial<typeof state>).ipKnownFrom;
      const after = createEngine({ policy, state: legacy });
      const findings = [
        ...after.process({ cluster: 'prod', event: known }),
        ...after.process({ cluster: 'prod', event: read('2026-01-12T10:00:00Z') }),
        ...after.flush(),
      ];
      expect(byRule(findings, 'secret-new-source-ip')).toEqual([]);
      expect(after.snapshot('prod/alice@example.com')!.ipKnownFrom['198.51.100.7']).toBe(0);
    });
  });

  it('forgets an address unseen past its retention', () => {
    const events = [
      known,
      otherRequest('2026-02-20T10:00:00Z', { sourceIPs: ['198.51.100.1'] }),
      secretRead('2026-02-21T10:00:00Z', { sourceIPs: ['203.0.113.10'] }),
    ];
    const [finding] = byRule(run(events).findings, 'secret-new-source-ip');
    expect(finding?.details).toMatchObject({ knownIPs: ['198.51.100.1'] });
  });
});

describe('detection > rules > token theft by a never-seen service account', () => {
  const helper = serviceAccount('default', 'backup-helper');
  const warm = otherRequest(WARMUP, {
    user: serviceAccount('kube-system', 'other'),
    sourceIPs: ['10.0.0.10'],
  });
  const stolen = (at: string, extra: Record<string, unknown> = {}) =>
    secretRead(at, {
      user: helper,
      sourceIPs: ['203.0.113.66'],
      verb: 'list',
      ...secretObject(undefined),
      ...extra,
    });

  it('its first request, a read from outside clusterCIDRs, is one high finding that says both what is new', () => {
    const { findings } = run([warm, stolen('2026-01-12T02:49:31Z')], berlin);
    expect(byRule(findings, 'secret-new-source-ip')).toEqual([]);
    const [finding, ...rest] = byRule(findings, 'secret-new-service-account');
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      severity: 'high',
      sourceIP: '203.0.113.66',
      mitre: ['T1552.007', 'T1078.004', 'T1528'],
      details: { outsideClusterCIDRs: true },
    });
    expect(finding!.summary).toBe(
      'Service account system:serviceaccount:default:backup-helper read secrets in all namespaces (list), cluster-wide, from 203.0.113.66 outside the cluster networks 10.0.0.0/8 (possible token theft); it had never read a secret before.',
    );
  });

  it('a read of its own namespace from outside is high too (outsideClusterSeverity)', () => {
    const { findings } = run(
      [warm, stolen('2026-01-12T02:49:31Z', { verb: 'get', ...secretObject('default', 'x') })],
      berlin,
    );
    expect(byRule(findings, 'secret-new-service-account')[0]).toMatchObject({ severity: 'high' });
  });

  it('secret-new-source-ip reports it when secret-new-service-account is off', () => {
    const { findings } = run([warm, stolen('2026-01-12T02:49:31Z')], {
      ...berlin,
      rules: { 'secret-new-service-account': { enabled: false } },
    });
    const [finding] = byRule(findings, 'secret-new-source-ip');
    expect(finding).toMatchObject({ severity: 'high', details: { outsideClusterCIDRs: true, knownIPs: [] } });
    expect(finding!.summary).toBe(
      'system:serviceaccount:default:backup-helper (a serviceaccount credential) read secrets from 203.0.113.66, outside the cluster networks 10.0.0.0/8: possible token theft; no address was known for it before.',
    );
  });

  it('an account that read secrets before, with every address aged out, is token theft from outside', () => {
    const inside = secretRead('2026-01-02T10:00:00Z', {
      user: helper,
      sourceIPs: ['10.1.2.3'],
      ...secretObject('default', 'x'),
    });
    const { findings } = run([warm, inside, stolen('2026-02-12T02:49:31Z')], berlin);
    expect(byRule(findings, 'secret-new-service-account')).toEqual([]);
    expect(byRule(findings, 'secret-new-source-ip')[0]).toMatchObject({
      severity: 'high',
      details: { knownIPs: [] },
    });
  });

  it('with an in-cluster address known, both fire and each says its own news', () => {
    const seen = otherRequest('2026-01-12T01:00:00Z', { user: helper, sourceIPs: ['10.1.2.3'] });
    const { findings } = run([warm, seen, stolen('2026-01-12T02:49:31Z')], berlin);
    expect(byRule(findings, 'secret-new-source-ip')[0]!.summary).toMatch(
      /possible token theft; it was only seen from 10\.1\.2\.3\.$/,
    );
    expect(byRule(findings, 'secret-new-service-account')[0]!.summary).toMatch(
      /it had never read a secret before\.$/,
    );
  });

  it('inside clusterCIDRs a never-seen account is only secret-new-service-account', () => {
    const { findings } = run([warm, stolen('2026-01-12T02:49:31Z', { sourceIPs: ['10.44.0.7'] })], berlin);
    expect(byRule(findings, 'secret-new-source-ip')).toEqual([]);
    const [finding] = byRule(findings, 'secret-new-service-account');
    expect(finding!.mitre).toEqual(['T1552.007', 'T1078.004']);
    expect(finding!.summary).not.toMatch(/token theft/);
  });
});

describe('detection > rules > secret-new-service-account', () => {
  const sa = serviceAccount('ci', 'deployer');
  const warm = otherRequest(WARMUP, { user: serviceAccount('kube-system', 'other') });

  it.each([
    ['a secret of its own namespace', 'get', secretObject('ci', 'token'), 'medium'],
    ['a secret of another namespace', 'get', secretObject('prod', 'db'), 'high'],
    ['secrets of all namespaces', 'list', secretObject(undefined), 'high'],
  ])('reports the first read of %s', (_name, verb, object, severity) => {
    const { findings } = run([
      warm,
      otherRequest('2026-01-12T09:00:00Z', { user: sa }),
      secretRead('2026-01-12T10:00:00Z', { user: sa, verb, ...object }),
    ]);
    const [finding, ...rest] = byRule(findings, 'secret-new-service-account');
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      severity,
      identity: { kind: 'serviceaccount', namespace: 'ci' },
      verbs: [verb],
    });
    expect(finding!.summary).toMatch(/it had never read a secret before/);
  });

  it('is silent for an account that read secrets during the learning period, or for a denied read', () => {
    const known = run([
      warm,
      secretRead('2026-01-02T10:00:00Z', { user: sa }),
      secretRead('2026-01-12T10:00:00Z', { user: sa }),
    ]);
    expect(byRule(known.findings, 'secret-new-service-account')).toEqual([]);
    const denied = run([
      warm,
      secretRead('2026-01-12T10:00:00Z', { user: sa, responseStatus: { code: 403 } }),
    ]);
    expect(byRule(denied.findings, 'secret-new-service-account')).toEqual([]);
  });

  it('groups the reads of the first window into one finding', () => {
    const reads = ['a', 'b', 'c'].map((name, i) =>
      secretRead(`2026-01-12T10:0${i}:00Z`, { user: sa, ...secretObject('ci', name) }),
    );
    const [finding, ...rest] = byRule(run([warm, ...reads]).findings, 'secret-new-service-account');
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      count: 3,
      objects: [
        { namespace: 'ci', name: 'a' },
        { namespace: 'ci', name: 'b' },
        { namespace: 'ci', name: 'c' },
      ],
    });
  });
});

describe('detection > rules > secret-enumeration', () => {
  const warm = otherRequest(WARMUP);

  it('500 distinct secrets in a burst are one finding covering every request', () => {
    const reads = Array.from({ length: 500 }, (_, i) =>
      secretRead(
        `2026-01-12T10:01:${String(i % 60).padStart(2, '0')}.${String(i).padStart(3, '0')}Z`,
        secretObject(`ns${i % 3}`, `s${i}`),
      ),
    );
    const [finding, ...rest] = byRule(run([warm, ...reads]).findings, 'secret-enumeration');
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({ severity: 'high', count: 481, mitre: ['T1552.007', 'T1613'] });
    expect(finding!.auditIDs).toHaveLength(200);
    expect(finding!.summary).toMatch(/read 20 distinct secrets across 3 namespaces within 5m/);
  });

  it('counts namespaces: five namespace lists within the window', () => {
    const lists = Array.from({ length: 5 }, (_, i) =>
      secretRead(`2026-01-12T10:0${i}:00Z`, { verb: 'list', ...secretObject(`team-${i}`) }),
    );
    const [finding] = byRule(run([warm, ...lists]).findings, 'secret-enumeration');
    expect(finding).toMatchObject({ count: 1, details: { distinctNamespaces: 5 } });
  });

  it('is silent below the thresholds or when reads are spread beyond the window', () => {
    const spread = Array.from({ length: 30 }, (_, i) =>
      secretRead(
        new Date(Date.parse('2026-01-12T08:00:00Z') + i * 6 * 60_000).toISOString(),
        secretObject('default', `s${i % 25}`),
      ),
    );
    expect(byRule(run([warm, ...spread]).findings, 'secret-enumeration')).toEqual([]);
  });

  it('reports the first cluster-wide list by an identity that never did one (after learning)', () => {
    const list = (at: string) => secretRead(at, { verb: 'list', ...secretObject(undefined) });
    const [finding] = byRule(
      run([warm, list('2026-01-12T10:00:00Z'), list('2026-01-12T12:00:00Z')]).findings,
      'secret-enumeration',
    );
    expect(finding).toMatchObject({ severity: 'medium', details: { firstClusterWideList: true } });
    expect(
      byRule(
        run([warm, list('2026-01-02T10:00:00Z'), list('2026-01-12T12:00:00Z')]).findings,
        'secret-enumeration',
      ),
    ).toEqual([]);
  });
});

describe('detection > rules > secret-anonymous-access', () => {
  it.each([
    [
      'system:anonymous allowed',
      { username: 'system:anonymous', groups: ['system:unauthenticated'] },
      200,
      'critical',
      /ALLOWED/,
    ],
    [
      'system:anonymous denied',
      { username: 'system:anonymous', groups: ['system:unauthenticated'] },
      403,
      'medium',
      /refused \(403\)/,
    ],
    [
      'an unauthenticated group member',
      { username: 'someone', groups: ['system:unauthenticated'] },
      401,
      'medium',
      /refused \(401\)/,
    ],
  ])('%s', (_name, user, code, severity, summary) => {
    const [finding] = byRule(
      run([secretRead('2026-01-12T10:00:00Z', { user, responseStatus: { code } })]).findings,
      'secret-anonymous-access',
    );
    expect(finding).toMatchObject({ severity, identity: { kind: 'anonymous' } });
    expect(finding!.summary).toMatch(summary);
  });
});

describe('detection > rules > secret-access-denied-burst', () => {
  const denied = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      secretRead(`2026-01-12T10:0${i}:00Z`, {
        ...secretObject('prod', `s${i}`),
        responseStatus: { code: 403 },
      }),
    );

  it('five 403s within five minutes are one finding', () => {
    const [finding, ...rest] = byRule(run(denied(6)).findings, 'secret-access-denied-burst');
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({ count: 2, details: { denied: 5, threshold: 5 } });
  });

  it('four are not', () => {
    expect(byRule(run(denied(4)).findings, 'secret-access-denied-burst')).toEqual([]);
  });
});

describe('detection > rules > secret-unusual-user-agent', () => {
  const warm = otherRequest(WARMUP);
  it.each([
    ['curl instead of kubectl', 'curl/8.5.0', 1],
    ['a kubectl upgrade', 'kubectl/v1.33.1 (darwin/arm64) kubernetes/xyz', 0],
  ])('%s', (_name, userAgent, expected) => {
    const findings = byRule(
      run([warm, secretRead('2026-01-12T10:00:00Z', { userAgent })]).findings,
      'secret-unusual-user-agent',
    );
    expect(findings).toHaveLength(expected);
    if (expected)
      expect(findings[0]).toMatchObject({
        severity: 'low',
        details: { newAgents: ['curl'], knownAgents: ['kubectl'] },
      });
  });
});

describe('detection > rules > allow-lists and switches', () => {
  const night = secretRead('2026-01-10T02:00:00Z', {
    user: { username: 'backup@example.com' },
    ...secretObject('backup', 'key'),
  });
  it.each([
    ['a global identity pattern', { allowList: { identities: ['backup@*'] } }],
    ['a global namespace', { allowList: { namespaces: ['backup'] } }],
    [
      'a rule allow-list',
      { rules: { 'secret-off-hours': { allowList: { identities: ['backup@example.com'] } } } },
    ],
    ['a disabled rule', { rules: { 'secret-off-hours': { enabled: false } } }],
  ])('%s silences the rule', (_name, policy) => {
    expect(byRule(run([night], policy).findings, 'secret-off-hours')).toEqual([]);
    expect(byRule(run([night]).findings, 'secret-off-hours')).toHaveLength(1);
  });

  it('every finding matches the contract schema', () => {
    const { findings } = run([
      night,
      secretRead('2026-01-12T10:00:00Z', { user: { username: 'system:anonymous' } }),
    ]);
    expect(findings.length).toBeGreaterThan(1);
    for (const finding of findings) expect(FindingSchema.parse(finding)).toEqual(finding);
  });
});

import { type AuditEvent, type Finding, ruleIds } from '@kaudit/audit-schema';
import { loadSampleEvents } from '@kaudit/testkit';
import {
  allowedBy,
  bindingCreate,
  byRule,
  otherRequest,
  podToken,
  run,
  secretObject,
  secretRead,
  serviceAccount,
  tokenRequest,
  WARMUP,
} from '../test/events';
import { createEngine } from './engine';
import { defaultPolicy, type PolicyInput } from './policy';

/** Seeded shuffle (mulberry32), so a failure can be replayed. */
function shuffle<T>(items: readonly T[], seed: number): T[] {
  let state = seed;
  const random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const sortById = (findings: Finding[]) => [...findings].sort((a, b) => a.id.localeCompare(b.id));

/** A day of mixed activity after the learning period: every rule has something to say. */
function mixedDay(): AuditEvent[] {
  const sa = serviceAccount('ci', 'deployer');
  const events: AuditEvent[] = [
    otherRequest(WARMUP),
    otherRequest(WARMUP, { user: serviceAccount('payments', 'api'), sourceIPs: ['10.1.2.3'] }),
    secretRead('2026-01-12T22:00:00Z'),
    secretRead('2026-01-12T10:00:00Z', { sourceIPs: ['198.51.100.7'], userAgent: 'curl/8.5.0' }),
    secretRead('2026-01-12T10:05:00Z', { user: sa, ...secretObject('prod', 'db') }),
    secretRead('2026-01-12T10:06:00Z', {
      user: serviceAccount('payments', 'api'),
      sourceIPs: ['198.51.100.9'],
      ...secretObject('payments', 'db'),
    }),
    secretRead('2026-01-12T10:07:00Z', {
      user: { username: 'system:anonymous' },
      responseStatus: { code: 403 },
    }),
    // Issue 15: a known identity in a new namespace; a binding and a token for another account, whose read through that binding is the chain;
    // a pod's token used from a second address; anonymous access to a non-secret API.
    secretRead('2026-01-02T10:00:00Z', {
      user: { username: 'frank@example.com' },
      ...secretObject('shop', 'a'),
    }),
    secretRead('2026-01-12T10:30:00Z', {
      user: { username: 'frank@example.com' },
      ...secretObject('payments', 'a'),
    }),
    bindingCreate('2026-01-12T14:00:00Z', 'ops-admin', { user: { username: 'dave@example.com' } }),
    tokenRequest('2026-01-12T14:01:00Z', 'ops', 'robot', { user: { username: 'dave@example.com' } }),
    secretRead('2026-01-12T14:03:00Z', {
      user: serviceAccount('ops', 'robot'),
      ...allowedBy('ops-admin', 'cluster-admin'),
      ...secretObject('ops', 'x'),
    }),
    otherRequest('2026-01-12T09:00:00Z', {
      user: podToken('payments', 'api', 'api-1', 'JTI=a'),
      sourceIPs: ['10.1.2.3'],
    }),
    otherRequest('2026-01-12T15:00:00Z', {
      user: podToken('payments', 'api', 'api-1', 'JTI=a'),
      sourceIPs: ['10.9.9.9'],
    }),
    otherRequest('2026-01-12T16:00:00Z', {
      user: { username: 'system:anonymous', groups: ['system:unauthenticated'] },
      requestURI: '/api/v1/namespaces',
      objectRef: { resource: 'namespaces', apiVersion: 'v1' },
    }),
  ];
  for (let i = 0; i < 30; i++) {
    events.push(
      secretRead(`2026-01-12T11:0${i % 3}:${String(i).padStart(2, '0')}Z`, {
        user: { username: 'mallory' },
        ...secretObject(`ns${i % 7}`, `s${i}`),
      }),
    );
    events.push(
      secretRead(`2026-01-12T12:0${i % 4}:${String(i).padStart(2, '0')}Z`, {
        user: { username: 'eve' },
        responseStatus: { code: 403 },
        ...secretObject('prod', `s${i}`),
      }),
    );
  }
  return events;
}

describe('detection > engine > determinism', () => {
  const policy: PolicyInput = {
    network: { clusterCIDRs: ['10.0.0.0/8'] },
    eventTime: { allowedLateness: '30d' },
    rules: { 'secret-canary-read': { canaries: [{ namespace: 'prod', name: 'db' }] } },
  };

  it('the same events shuffled give the same findings', () => {
    const events = mixedDay();
    const reference = sortById(run(events, policy).findings);
    // The mixed day makes every rule speak, so shuffling is tested on each of them.
    expect(new Set(reference.map((f) => f.rule))).toEqual(new Set(ruleIds));
    for (const seed of [1, 2, 3, 42]) {
      expect(sortById(run(shuffle(events, seed), policy).findings)).toEqual(reference);
    }
  });

  it('finding ids depend on rule, cluster, identity and window only', () => {
    const events = mixedDay();
    const a = run(events, policy, 'prod').findings.map((f) => f.id);
    const b = run(events, policy, 'prod').findings.map((f) => f.id);
    const other = run(events, policy, 'staging').findings.map((f) => f.id);
    expect(a).toEqual(b);
    expect(a.filter((id) => other.includes(id))).toEqual([]);
  });

  it('reorders events that arrive within the allowed lateness', () => {
    const known = otherRequest(WARMUP, { sourceIPs: ['203.0.113.10'] });
    // The read from the new address happened first but arrives second: it is still the new one.
    const early = secretRead('2026-01-12T10:00:00Z', { sourceIPs: ['198.51.100.7'] });
    const later = secretRead('2026-01-12T10:01:00Z', { sourceIPs: ['203.0.113.10'] });
    const [finding] = byRule(run([known, later, early]).findings, 'secret-new-source-ip');
    expect(finding?.auditIDs).toEqual([early.auditID]);
  });
});

describe('detection > engine > stages and duplicates', () => {
  const read = secretRead('2026-01-10T02:00:00Z');

  it('counts a request once however many stages it is logged in', () => {
    const stages = ['RequestReceived', 'ResponseComplete'].map((stage) => ({ ...read, stage }) as AuditEvent);
    const { findings, engine } = run([...stages, read]);
    expect(byRule(findings, 'secret-off-hours')[0]).toMatchObject({ count: 1, auditIDs: [read.auditID] });
    expect(engine.stats()).toMatchObject({ secretReads: 1, duplicates: 1, ignored: 1 });
  });

  it('counts a watch at ResponseStarted and drops its ResponseComplete', () => {
    const watch = secretRead('2026-01-10T02:00:00Z', { verb: 'watch', stage: 'ResponseStarted' });
    const { engine } = run([
      watch,
      { ...watch, stage: 'ResponseComplete', stageTimestamp: '2026-01-10T02:50:00Z' },
    ]);
    expect(engine.stats()).toMatchObject({ secretReads: 1, duplicates: 1 });
  });

  it('does not trust auditID alone: the same auditID on another request counts', () => {
    const spoof = {
      ...read,
      requestURI: '/api/v1/namespaces/default/secrets/other',
      objectRef: { resource: 'secrets', namespace: 'default', name: 'other' },
    };
    const { findings } = run([read, spoof]);
    expect(byRule(findings, 'secret-off-hours')[0]).toMatchObject({ count: 2 });
  });

  it('a re-delivered event never makes a second finding', () => {
    const engine = createEngine({ policy: defaultPolicy() });
    const first = [...engine.process({ cluster: 'prod', event: read }), ...engine.flush()];
    const again = [...engine.process({ cluster: 'prod', event: read }), ...engine.flush()];
    expect(first).toHaveLength(1);
    expect(again).toEqual([]);
  });
});

describe('detection > engine > learning period', () => {
  it('runs per cluster from its first event', () => {
    const sa = serviceAccount('ci', 'deployer');
    const engine = createEngine({ policy: defaultPolicy() });
    engine.process({ cluster: 'old', event: otherRequest(WARMUP) });
    const read = secretRead('2026-01-12T10:00:00Z', { user: sa });
    const findings = [
      ...engine.process({ cluster: 'old', event: read }),
      ...engine.process({ cluster: 'new', event: read }),
      ...engine.flush(),
    ];
    expect(byRule(findings, 'secret-new-service-account').map((f) => f.cluster)).toEqual(['old']);
  });
});

describe('detection > engine > state', () => {
  const input: PolicyInput = { network: { clusterCIDRs: ['10.0.0.0/8'] } };
  const policy = defaultPolicy(input);

  it('a run split by a JSON snapshot/restore gives the findings of one run', () => {
    const events = mixedDay();
    const whole = run(events, input).findings;
    const first = createEngine({ policy });
    const half = Math.floor(events.length / 2);
    const findings = events.slice(0, half).flatMap((event) => first.process({ cluster: 'prod', event }));
    const persisted = JSON.parse(JSON.stringify(first.snapshot()));
    const second = createEngine({ policy, state: persisted });
    findings.push(
      ...events.slice(half).flatMap((event) => second.process({ cluster: 'prod', event })),
      ...second.flush(),
    );
    expect(sortById(findings)).toEqual(sortById(whole));
  });

  it('restores key by key, as the detector does from its changelog', () => {
    const events = mixedDay();
    const first = createEngine({ policy });
    const findings = events.slice(0, 40).flatMap((event) => first.process({ cluster: 'prod', event }));
    const dirty = first.takeDirty();
    expect(dirty.clusters).toEqual(['prod']);
    const second = createEngine({ policy });
    second.restore({ clusters: { prod: JSON.parse(JSON.stringify(first.snapshotCluster('prod'))) } });
    for (const key of dirty.identities)
      second.restore({ identities: { [key]: JSON.parse(JSON.stringify(first.snapshot(key))) } });
    findings.push(
      ...events.slice(40).flatMap((event) => second.process({ cluster: 'prod', event })),
      ...second.flush(),
    );
    expect(sortById(findings)).toEqual(sortById(run(events, input).findings));
  });

  it('bounds what it learns per identity', () => {
    const bounded: PolicyInput = { baseline: { sourceIPs: { max: 3 } } };
    const events = Array.from({ length: 20 }, (_, i) =>
      otherRequest(`2026-01-05T10:${String(i).padStart(2, '0')}:00Z`, { sourceIPs: [`198.51.100.${i}`] }),
    );
    const { engine } = run(events, bounded);
    expect(Object.keys(engine.snapshot('prod/alice@example.com')!.ips)).toEqual([
      '198.51.100.17',
      '198.51.100.18',
      '198.51.100.19',
    ]);
  });

  it('holds no emitted-ids map until a window is reported, and drops it once every id aged out', () => {
    const engine = createEngine({ policy: defaultPolicy() });
    engine.process({ cluster: 'prod', event: otherRequest(WARMUP) });
    engine.flush();
    expect(engine.snapshot('prod/alice@example.com')!.emitted).toBeUndefined();
    engine.process({ cluster: 'prod', event: secretRead('2026-01-10T02:00:00Z') });
    engine.flush();
    expect(Object.keys(engine.snapshot('prod/alice@example.com')!.emitted!)).toHaveLength(1);
    // Past dedupRetention (2 h by default) and the next hourly prune, the id is forgotten.
    engine.process({ cluster: 'prod', event: otherRequest('2026-01-12T10:00:00Z') });
    engine.flush();
    expect(engine.snapshot('prod/alice@example.com')!.emitted).toBeUndefined();
  });

  it('forgets an identity unseen past identityRetention', () => {
    const { engine } = run(
      [otherRequest(WARMUP, { user: { username: 'gone' } }), otherRequest('2026-06-01T10:00:00Z')],
      { baseline: { identityRetention: '30d' } },
    );
    expect(engine.snapshot('prod/gone')).toBeUndefined();
    expect(engine.takeDirty().identities).toContain('prod/gone');
    expect(engine.stats().identities).toBe(1);
  });

  it('flush({ idleMs }) moves a quiet partition past its requests: the finding is reported, once', () => {
    const engine = createEngine({ policy: defaultPolicy() });
    expect(engine.process({ cluster: 'prod', event: secretRead('2026-01-10T02:00:00Z') })).toEqual([]);
    // Under the 30 s lateness the read is still waiting for the watermark.
    expect(engine.flush({ idleMs: 10_000 })).toEqual([]);
    const findings = engine.flush({ idleMs: 60_000 });
    expect(findings.map((f) => [f.rule, f.revision])).toEqual([['secret-off-hours', 1]]);
    // Its window closing later adds nothing: no evidence joined since.
    expect(engine.flush({ idleMs: 15 * 60_000 })).toEqual([]);
  });
});

describe('detection > engine > real samples', () => {
  it('counts the OpenShift kubelet secret watches once each, late ResponseComplete included', () => {
    const events = loadSampleEvents('openshift/ocp-aws-2024-audit-with-bad-line.jsonl');
    const { findings, engine } = run(events);
    // The first watch's ResponseComplete was logged 9 minutes after it started: behind the watermark.
    expect(engine.stats()).toMatchObject({ events: 101, secretReads: 2, duplicates: 0 });
    expect(engine.stats().late).toBeGreaterThan(0);
    // First events of the cluster: still learning, and the node reads during what UTC calls business hours.
    expect(findings).toEqual([]);
    const node = engine.snapshot('prod/system:node:ip-10-0-18-7.us-east-2.compute.internal');
    expect(node).toMatchObject({
      secretReads: 2,
      namespaces: { 'openshift-ovn-kubernetes': expect.any(Number) },
    });
  });

  it('keeps audit2rbac impersonation and its 403 on secrets', () => {
    const events = loadSampleEvents('audit2rbac/demo-v1beta1.jsonl');
    const { findings, engine } = run(events, { rules: { 'secret-access-denied-burst': { threshold: 1 } } });
    expect(engine.stats().secretReads).toBe(1);
    expect(byRule(findings, 'secret-access-denied-burst')).toEqual([
      expect.objectContaining({
        identity: {
          username: 'alice',
          kind: 'user',
          groups: ['system:authenticated'],
          impersonator: 'system:admin',
        },
        sourceIP: '::1',
        objects: [{ namespace: 'ns1' }],
        verbs: ['list'],
        firstSeen: '2017-09-11T20:29:04.000Z',
      }),
    ]);
  });

  it('learns the OpenShift 4.12 controllers without findings while learning', () => {
    const { findings, engine } = run(loadSampleEvents('openshift/ocp-4.12-audit.jsonl'));
    expect(findings.filter((f) => f.rule.startsWith('secret-new'))).toEqual([]);
    expect(engine.stats().identities).toBeGreaterThan(3);
  });
});

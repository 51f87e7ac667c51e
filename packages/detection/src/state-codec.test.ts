import type { AuditEvent } from '@kaudit/audit-schema';
import { buildEvent, loadSampleEvents } from '@kaudit/testkit';
import type { IdentityState } from './baseline';
import { createEngine } from './engine';
import { defaultPolicy } from './policy';
import type { Observation } from './scope';
import { decodeIdentity, encodeIdentity } from './state-codec';

// 2 minutes' lateness, so requests wait in the reorder buffer the codec must round-trip.
const policy = defaultPolicy({
  network: { clusterCIDRs: ['10.0.0.0/8'] },
  eventTime: { allowedLateness: '2m' },
});
const plain = (state: IdentityState) => JSON.parse(JSON.stringify(state)) as IdentityState;

/** Every identity of an engine that has read `events`, mid-stream (pending requests, open groups). */
function statesAfter(events: AuditEvent[]): IdentityState[] {
  const engine = createEngine({ policy });
  for (const event of events) engine.process({ cluster: 'prod', event });
  return Object.values(engine.snapshot().identities);
}

describe('detection > state-codec', () => {
  it('round-trips every identity of real logs (impersonation, denials, stages, no agents)', () => {
    const states = statesAfter([
      ...loadSampleEvents('audit2rbac/demo-v1beta1.jsonl'),
      ...loadSampleEvents('openshift/ocp-4.12-audit.jsonl'),
      ...loadSampleEvents('openshift/raw-oauth-apiserver-event.json'),
    ]);
    expect(states.length).toBeGreaterThan(10);
    for (const state of states) expect(decodeIdentity(encodeIdentity(state))).toEqual(plain(state));
  });

  it('round-trips pending requests that differ from the one before, groups and emitted ids', () => {
    const at = (time: string) => `2026-01-10T${time}.000000Z`;
    const read = (time: string, overrides: Partial<AuditEvent> & Record<string, unknown> = {}) =>
      buildEvent({
        requestReceivedTimestamp: at(time),
        stageTimestamp: at(time),
        user: { username: 'alice', groups: ['dev'] },
        sourceIPs: ['203.0.113.7'],
        userAgent: 'kubectl/v1.31.0',
        ...overrides,
      });
    const secret = { resource: 'secrets', namespace: 'a', name: 'x', apiVersion: 'v1' };
    const events = [
      // Night reads, judged and closed by the later ones: emitted ids and learned baselines.
      read('03:00:00'),
      read('03:01:00', { objectRef: secret }),
      // Waiting for the watermark (allowed lateness 2m): each differs from the one before.
      read('05:00:00'),
      read('05:00:01', { user: { username: 'alice', groups: ['dev', 'ops'] }, sourceIPs: ['198.51.100.1'] }),
      read('05:00:02', { userAgent: undefined, responseStatus: { code: 403 } }),
      read('05:00:03', {
        sourceIPs: undefined,
        verb: 'list',
        objectRef: { resource: 'secrets', apiVersion: 'v1' },
      }),
      read('05:00:04', { responseStatus: undefined, userAgent: 'curl/8' }),
      read('05:00:05', {
        user: { username: 'bob' },
        impersonatedUser: { username: 'alice', groups: ['dev'] },
      }),
      read('05:00:06', { sourceIPs: ['198.51.100.1'], objectRef: secret }),
      read('05:00:07', { sourceIPs: ['198.51.100.1'], objectRef: secret }),
      read('05:01:00'),
    ];
    const states = statesAfter(events);
    const alice = states.find((s) => s.username === 'alice')!;
    expect(alice.pending.length).toBe(9);
    expect(alice.pending.some((o) => o.identity.impersonator === 'bob')).toBe(true);
    expect(Object.keys(alice.emitted ?? {}).length + Object.keys(alice.groups).length).toBeGreaterThan(0);
    for (const state of states) expect(decodeIdentity(encodeIdentity(state))).toEqual(plain(state));
  });

  it('knows every field of IdentityState and Observation (a new field must be added to the codec)', () => {
    const [state] = statesAfter([buildEvent({ requestReceivedTimestamp: '2026-01-10T03:00:00Z' })]);
    const full: Observation = {
      ...state!.pending[0]!,
      sourceIP: '10.0.0.1',
      userAgent: 'kubectl',
      code: 200,
      secret: { clusterWide: false, outcome: 'allowed', namespace: 'a', name: 'x' },
      tooLate: true,
    };
    state!.pending.push(full);
    const decoded = decodeIdentity(encodeIdentity(state!));
    expect(Object.keys(decoded).sort()).toEqual(Object.keys(state!).sort());
    expect(decoded.pending[1]).toEqual(full);
  });

  it('reads the JSON objects earlier versions wrote, and is smaller than them', () => {
    const [state] = statesAfter(loadSampleEvents('audit2rbac/demo-v1beta1.jsonl')).filter(
      (s) => s.pending.length > 3,
    );
    expect(state).toBeDefined();
    const json = JSON.stringify(state);
    expect(decodeIdentity(json)).toEqual(plain(state!));
    expect(encodeIdentity(state!).length).toBeLessThan(json.length / 2);
  });

  it('refuses a format it does not know', () => {
    expect(() => decodeIdentity('[3,"prod"]')).toThrow(/unknown identity state format 3/);
  });
});

describe('detection > state-codec > issue 15 upgrade path', () => {
  const token = {
    username: 'system:serviceaccount:payments:api',
    groups: ['system:serviceaccounts'],
    extra: {
      'authentication.kubernetes.io/credential-id': ['JTI=1'],
      'authentication.kubernetes.io/pod-name': ['api-1'],
    },
  };
  const events = [
    buildEvent({ requestReceivedTimestamp: '2026-01-10T10:00:00Z', user: token, sourceIPs: ['10.1.2.3'] }),
    buildEvent({
      requestReceivedTimestamp: '2026-01-10T10:00:30Z',
      user: { username: 'alice', groups: [] },
      verb: 'create',
      requestURI: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
      objectRef: { resource: 'clusterrolebindings', name: 'x', apiGroup: 'rbac.authorization.k8s.io' },
      responseStatus: { code: 201 },
    }),
  ];

  it('round-trips the new fields (tokens, pending facts) through the array encoding', () => {
    const states = statesAfter(events);
    const withFacts = states.find((s) => s.pending.some((o) => o.facts));
    expect(withFacts).toBeDefined();
    for (const state of states) expect(decodeIdentity(encodeIdentity(state))).toEqual(plain(state));
    const engine = createEngine({ policy });
    for (const event of events) engine.process({ cluster: 'prod', event });
    engine.flush();
    const api = engine.snapshot('prod/system:serviceaccount:payments:api')!;
    expect(api.tokens).toEqual({
      'JTI=1': ['10.1.2.3', Date.parse('2026-01-10T10:00:00Z')],
      'api-1': ['10.1.2.3', Date.parse('2026-01-10T10:00:00Z')],
    });
    expect(decodeIdentity(encodeIdentity(api))).toEqual(plain(api));
  });

  it('a row written before issue 15 (20 columns, no facts in pending) decodes without the new fields', () => {
    const [state] = statesAfter([buildEvent({ requestReceivedTimestamp: '2026-01-10T10:00:00Z' })]);
    const row = JSON.parse(encodeIdentity(state!)) as unknown[];
    // Nothing of issue 15 learned: the row is the 20 columns earlier versions wrote.
    expect(row).toHaveLength(20);
    const old = JSON.stringify(row);
    const decoded = decodeIdentity(old);
    expect(decoded).toEqual(plain(state!));
    for (const field of ['recentNewNamespaces', 'tokens', 'recentRefused', 'csrs'])
      expect(decoded).not.toHaveProperty(field);
    // And an engine restored from it goes on judging (the new rules start from nothing learned).
    const engine = createEngine({ policy, state: { identities: { 'prod/alice@example.com': decoded } } });
    expect(() => engine.flush()).not.toThrow();
  });

  it('an object-form state of an earlier version (no new fields) is upgraded on restore', () => {
    const [state] = statesAfter([buildEvent({ requestReceivedTimestamp: '2026-01-10T10:00:00Z' })]);
    const old = plain(state!) as Partial<IdentityState>;
    delete old.recentNewNamespaces;
    delete old.tokens;
    delete old.recentRefused;
    delete old.csrs;
    const engine = createEngine({
      policy,
      state: { identities: { 'prod/alice@example.com': old as IdentityState } },
    });
    engine.process({
      cluster: 'prod',
      event: buildEvent({ requestReceivedTimestamp: '2026-01-10T11:00:00Z' }),
    });
    engine.flush();
    // Absent fields are what nothing learned looks like (they are created when first learned).
    const after = engine.snapshot('prod/alice@example.com')!;
    expect(after.lastSeen).toBe(Date.parse('2026-01-10T11:00:00Z'));
    expect(after).not.toHaveProperty('tokens');
    expect(decodeIdentity(encodeIdentity(after))).toEqual(plain(after));
  });

  it('cluster state of an earlier version has no steps; restore merges steps of two copies once each', () => {
    const a = createEngine({ policy });
    for (const event of events) a.process({ cluster: 'prod', event });
    a.flush();
    const cluster = JSON.parse(JSON.stringify(a.snapshotCluster('prod')));
    expect(cluster.steps).toHaveLength(1);
    const b = createEngine({
      policy,
      state: { clusters: { prod: { firstEvent: 1, maxEvent: 2, watermark: 2 } } },
    });
    b.restore({ clusters: { prod: cluster } });
    b.restore({ clusters: { prod: cluster } });
    expect(b.snapshotCluster('prod')!.steps).toHaveLength(1);
  });
});

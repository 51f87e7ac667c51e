import { buildEvent, loadSampleEvents } from '@kaudit/testkit';
import { AuditEventSchema, isAuditEvent, parseAuditEvent } from './audit-event';
import { decodeEnvelope, isEnvelope } from './decode-envelope';
import { EnvelopeSchema } from './envelope';

const encode = (value: unknown) => Buffer.from(JSON.stringify(value));
const envelope = (event: unknown, extra: Record<string, unknown> = {}) => ({
  cluster: 'prod',
  receivedAt: '2026-01-05T10:00:00.123456Z',
  event,
  ...extra,
});

describe('audit-schema > decode-envelope', () => {
  const samples = [
    ...loadSampleEvents('openshift/ocp-4.12-audit.jsonl'),
    ...loadSampleEvents('audit2rbac/demo-v1beta1.jsonl'),
    ...loadSampleEvents('minikube/pod-exec.jsonl'),
    ...loadSampleEvents('openshift/raw-kubernetes-event.json'),
  ];

  it('takes real events on the fast path, unchanged', () => {
    expect(samples.length).toBeGreaterThan(800);
    for (const event of samples) {
      const value = JSON.parse(JSON.stringify(envelope(event)));
      expect(isEnvelope(value)).toBe(true);
      const { cluster, event: parsed } = EnvelopeSchema.parse(value);
      expect(decodeEnvelope(encode(value))).toEqual({ ok: true, envelope: { cluster, event: parsed } });
    }
  });

  // Each mutation of a valid envelope: the fast check may only accept what the full schema accepts.
  const base = () => envelope(buildEvent({ impersonatedUser: { username: 'bob', groups: ['g'] } }));
  type Json = Record<string, unknown>;
  const mutations: Array<[string, (e: Json, event: Json, user: Json) => void]> = [
    ['cluster empty', (e) => (e.cluster = '')],
    ['cluster missing', (e) => delete e.cluster],
    ['receivedAt without offset', (e) => (e.receivedAt = '2026-01-05T10:00:00')],
    ['receivedAt 30 February', (e) => (e.receivedAt = '2026-02-30T10:00:00Z')],
    ['receivedAt with offset', (e) => (e.receivedAt = '2026-01-05T10:00:00+02:00')],
    ['event null', (e) => (e.event = null)],
    ['event an array', (e) => (e.event = [])],
    ['kind other', (_e, event) => (event.kind = 'EventList')],
    ['apiVersion v1beta1', (_e, event) => (event.apiVersion = 'audit.k8s.io/v1beta1')],
    ['apiVersion missing', (_e, event) => delete event.apiVersion],
    ['level unknown', (_e, event) => (event.level = 'Everything')],
    ['stage unknown', (_e, event) => (event.stage = 'Done')],
    ['auditID empty', (_e, event) => (event.auditID = '')],
    ['auditID a number', (_e, event) => (event.auditID = 7)],
    ['verb empty', (_e, event) => (event.verb = '')],
    ['requestURI missing', (_e, event) => delete event.requestURI],
    ['user missing', (_e, event) => delete event.user],
    ['username a number', (_e, _event, user) => (user.username = 1)],
    ['groups not strings', (_e, _event, user) => (user.groups = [1])],
    ['extra not arrays', (_e, _event, user) => (user.extra = { scope: 'x' })],
    ['extra arrays', (_e, _event, user) => (user.extra = { scope: ['x'] })],
    ['impersonatedUser without username', (_e, event) => (event.impersonatedUser = { groups: [] })],
    ['sourceIPs a string', (_e, event) => (event.sourceIPs = '10.0.0.1')],
    ['sourceIPs null', (_e, event) => (event.sourceIPs = null)],
    ['userAgent a number', (_e, event) => (event.userAgent = 5)],
    ['objectRef null', (_e, event) => (event.objectRef = null)],
    [
      'objectRef.namespace a number',
      (_e, event) => (event.objectRef = { resource: 'secrets', namespace: 3 }),
    ],
    ['objectRef with unknown fields', (_e, event) => (event.objectRef = { resource: 'secrets', x: 1 })],
    ['responseStatus.code fractional', (_e, event) => (event.responseStatus = { code: 200.5 })],
    ['responseStatus.code a string', (_e, event) => (event.responseStatus = { code: '200' })],
    ['responseStatus.code huge', (_e, event) => (event.responseStatus = { code: 1e300 })],
    ['requestReceivedTimestamp missing', (_e, event) => delete event.requestReceivedTimestamp],
    ['stageTimestamp garbage', (_e, event) => (event.stageTimestamp = 'yesterday')],
    ['annotations not strings', (_e, event) => (event.annotations = { a: 1 })],
    ['annotations an array', (_e, event) => (event.annotations = ['a'])],
    ['unknown event field', (_e, event) => (event.newField = { any: 'thing' })],
    ['unknown envelope field', (e) => (e.extra = 1)],
    ['copy a chain step', (e) => (e.copy = 'chain-step')],
    ['copy of another kind', (e) => (e.copy = 'other')],
    ['requestObject null', (_e, event) => (event.requestObject = null)],
  ];

  it('carries a chain step copy marker, and only that one', () => {
    const value = envelope(buildEvent(), { copy: 'chain-step' });
    expect(decodeEnvelope(encode(value))).toMatchObject({ ok: true, envelope: { copy: 'chain-step' } });
    expect(decodeEnvelope(encode({ ...value, copy: 'other' }))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^copy: /),
    });
  });

  it.each(mutations)('agrees with the schema: %s', (_name, mutate) => {
    const value = JSON.parse(JSON.stringify(base()));
    mutate(value, value.event, value.event.user);
    const schema = EnvelopeSchema.safeParse(value);
    if (isEnvelope(value)) expect(schema.success).toBe(true);
    const decoded = decodeEnvelope(encode(value));
    expect(decoded.ok).toBe(schema.success);
    if (!decoded.ok) expect(decoded.reason).not.toBe('');
    // The sink's parseAuditEvent takes the same fast path for the event alone.
    const event = AuditEventSchema.safeParse(value.event);
    if (isAuditEvent(value.event)) {
      expect(event.success).toBe(true);
      expect(parseAuditEvent(value.event)).toEqual({ ok: true, event: event.data });
    }
  });

  it('parseAuditEvent: real events on the fast path, as the schema returns them', () => {
    for (const sample of samples) {
      const raw = JSON.parse(JSON.stringify(sample));
      expect(isAuditEvent(raw)).toBe(true);
      expect(parseAuditEvent(raw)).toEqual({ ok: true, event: AuditEventSchema.parse(raw) });
    }
  });

  it('knows every field of the schema (a field added to EnvelopeSchema must be added to the check)', () => {
    expect(Object.keys(EnvelopeSchema.shape)).toEqual(['cluster', 'receivedAt', 'event', 'copy']);
    expect(Object.keys(EnvelopeSchema.shape.event.shape)).toEqual([
      'kind',
      'apiVersion',
      'level',
      'auditID',
      'stage',
      'requestURI',
      'verb',
      'user',
      'impersonatedUser',
      'sourceIPs',
      'userAgent',
      'objectRef',
      'responseStatus',
      'requestObject',
      'responseObject',
      'requestReceivedTimestamp',
      'stageTimestamp',
      'annotations',
    ]);
  });

  it('says why a message is no envelope', () => {
    expect(decodeEnvelope(null)).toEqual({ ok: false, reason: 'empty message' });
    expect(decodeEnvelope(Buffer.from('{"cluster":'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^not valid JSON/),
    });
    expect(decodeEnvelope(encode(envelope({ ...buildEvent(), verb: '' })))).toEqual({
      ok: false,
      reason: 'event.verb: verb must not be empty',
    });
    expect(decodeEnvelope(encode(42))).toMatchObject({ ok: false });
  });
});

import type { Envelope } from '@kaudit/audit-schema';
import { buildEvent, loadSampleEvents } from '@kaudit/testkit';
import { eventDocumentId, toEventDocument } from './event-document';

const envelope = (overrides: Parameters<typeof buildEvent>[0] = {}, cluster = 'prod'): Envelope => ({
  cluster,
  receivedAt: '2026-01-05T10:00:01.000Z',
  event: buildEvent(overrides),
});

const get = (doc: Record<string, unknown>, path: string): unknown =>
  path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], doc);

describe('es-resources > event document id', () => {
  it('is the same for the same event whatever the key order', () => {
    const event = buildEvent({ auditID: 'a-1' });
    const reordered = Object.fromEntries(Object.entries(event).reverse()) as typeof event;
    expect(eventDocumentId('prod', reordered)).toBe(eventDocumentId('prod', event));
  });

  it('differs for a forged duplicate auditID with different content', () => {
    const real = buildEvent({ auditID: 'same-id' });
    const forged = { ...real, user: { username: 'mallory' } };
    expect(eventDocumentId('prod', forged)).not.toBe(eventDocumentId('prod', real));
  });

  it('differs for each stage of one request and for another cluster', () => {
    const complete = buildEvent({ auditID: 'r-1', stage: 'ResponseComplete' });
    const started = { ...complete, stage: 'ResponseStarted' as const };
    const ids = new Set([
      eventDocumentId('prod', complete),
      eventDocumentId('prod', started),
      eventDocumentId('staging', complete),
    ]);
    expect(ids.size).toBe(3);
  });

  it('is short enough for an Elasticsearch _id (at most 512 bytes)', () => {
    expect(toEventDocument(envelope())._id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('es-resources > event document fields', () => {
  it('maps a Secret get to ECS and keeps the event under kubernetes.audit', () => {
    const { doc } = toEventDocument(envelope({ requestReceivedTimestamp: '2026-01-05T10:00:00.123456Z' }));
    expect(doc).toMatchObject({
      '@timestamp': '2026-01-05T10:00:00.123456Z',
      event: {
        kind: 'event',
        action: 'get',
        outcome: 'success',
        type: ['access'],
        dataset: 'kubernetes.audit_logs',
      },
      user: { name: 'alice@example.com' },
      source: { ip: '203.0.113.10' },
      user_agent: { original: 'kubectl/v1.31.0 (linux/amd64) kubernetes/abc' },
      orchestrator: {
        type: 'kubernetes',
        cluster: { name: 'prod' },
        namespace: 'default',
        resource: { type: 'secrets', name: 'db-password' },
      },
      related: { ip: ['203.0.113.10'], user: ['alice@example.com'] },
      kaudit: { cluster: 'prod', time: { weekday: 1, hour: 10 } },
      kubernetes: { audit: { verb: 'get', objectRef: { resource: 'secrets' }, sourceIPs: ['203.0.113.10'] } },
    });
    expect(doc).not.toHaveProperty('data_stream');
  });

  it('sets data_stream.* for the namespace it is written to', () => {
    const { doc } = toEventDocument(envelope(), { namespace: 'team_a' });
    // The integration's dataset in kaudit's own namespace: Elastic's prebuilt rules filter on it.
    expect(doc.data_stream).toEqual({
      type: 'logs',
      dataset: 'kubernetes.audit_logs',
      namespace: 'kaudit_team_a',
    });
    expect(toEventDocument(envelope(), { namespace: 'default' }).doc.data_stream).toMatchObject({
      namespace: 'kaudit',
    });
  });

  it.each([
    [['10.0.0.1', '198.51.100.7'], '198.51.100.7', ['10.0.0.1', '198.51.100.7']],
    [['198.51.100.7'], '198.51.100.7', ['198.51.100.7']],
    [['::1'], '::1', ['::1']],
    [['not-an-ip', '198.51.100.7'], '198.51.100.7', ['198.51.100.7']],
    [['198.51.100.7', 'garbage'], undefined, ['198.51.100.7']],
    [[], undefined, undefined],
  ])('sourceIPs %j: source.ip %s (the last, trusted one), related.ip %j', (sourceIPs, sourceIp, related) => {
    const { doc } = toEventDocument(envelope({ sourceIPs }));
    expect(get(doc, 'source.ip')).toBe(sourceIp);
    expect(get(doc, 'client.ip')).toBe(sourceIp);
    expect(get(doc, 'related.ip')).toEqual(related);
    expect(get(doc, 'kubernetes.audit.sourceIPs')).toEqual(sourceIPs);
  });

  it.each([
    [{ annotations: { 'authorization.k8s.io/decision': 'allow' }, responseStatus: { code: 404 } }, 'success'],
    [
      { annotations: { 'authorization.k8s.io/decision': 'forbid' }, responseStatus: { code: 403 } },
      'failure',
    ],
    [{ responseStatus: { code: 403 } }, 'failure'],
    [{ responseStatus: { code: 201 } }, 'success'],
    [{ responseStatus: undefined }, 'unknown'],
  ])('event.outcome of %j is %s', (overrides, outcome) => {
    expect(get(toEventDocument(envelope(overrides)).doc, 'event.outcome')).toBe(outcome);
  });

  it.each([
    ['get', 'access'],
    ['watch', 'access'],
    ['create', 'creation'],
    ['patch', 'change'],
    ['deletecollection', 'deletion'],
    ['head', 'info'],
  ])('verb %s is event.type %s', (verb, type) => {
    expect(get(toEventDocument(envelope({ verb })).doc, 'event.type')).toEqual([type]);
  });

  it('dedots annotation keys like the Elastic integration and lists redacted paths', () => {
    const { doc } = toEventDocument(
      envelope({
        annotations: {
          'authorization.k8s.io/decision': 'allow',
          'kaudit.dev/redacted': 'requestObject.data, responseObject.data',
        },
      }),
    );
    expect(get(doc, 'kubernetes.audit.annotations')).toEqual({
      'authorization_k8s_io/decision': 'allow',
      'kaudit_dev/redacted': 'requestObject.data, responseObject.data',
    });
    expect(get(doc, 'kaudit.redacted_paths')).toEqual(['requestObject.data', 'responseObject.data']);
  });

  it('names the impersonated identity as user.effective and relates both users', () => {
    const { doc } = toEventDocument(
      envelope({ user: { username: 'admin' }, impersonatedUser: { username: 'bob', uid: 'u-2' } }),
    );
    expect(doc.user).toEqual({ name: 'admin', effective: { name: 'bob', id: 'u-2' } });
    expect(get(doc, 'related.user')).toEqual(['admin', 'bob']);
  });

  it.each([
    ['2026-01-04T23:59:59Z', 7, 23],
    ['2026-01-05T00:00:00Z', 1, 0],
    ['2026-03-29T01:30:00+02:00', 6, 23],
  ])('event time %s is UTC weekday %d hour %d', (requestReceivedTimestamp, weekday, hour) => {
    expect(get(toEventDocument(envelope({ requestReceivedTimestamp })).doc, 'kaudit.time')).toEqual({
      weekday,
      hour,
    });
  });

  it('keeps a request body whose shape conflicts with the mapped sub-fields, unindexed and whole', () => {
    const requestObject = { kind: 'Widget', spec: { type: { nested: true }, empty: {} } };
    const { doc } = toEventDocument(envelope({ verb: 'create', requestObject }));
    expect(get(doc, 'kubernetes.audit.requestObject')).toBeUndefined();
    expect(get(doc, 'kaudit.unindexed.requestObject')).toEqual(requestObject);
  });

  it('indexes a pod spec in place', () => {
    const requestObject = {
      kind: 'Pod',
      spec: { hostPID: true, containers: [{ image: 'nginx', securityContext: { privileged: true } }] },
    };
    const { doc } = toEventDocument(envelope({ verb: 'create', requestObject }));
    expect(get(doc, 'kubernetes.audit.requestObject')).toEqual(requestObject);
    expect(get(doc, 'kaudit.unindexed')).toBeUndefined();
  });

  it('maps every real sample event, with @timestamp from requestReceivedTimestamp', () => {
    const events = [
      ...loadSampleEvents('openshift/ocp-4.12-audit.jsonl'),
      ...loadSampleEvents('audit2rbac/demo-v1beta1.jsonl'),
      ...loadSampleEvents('aks/eventhub-batch.json'),
    ];
    expect(events.length).toBeGreaterThan(800);
    const ids = new Set<string>();
    for (const event of events) {
      const { _id, doc } = toEventDocument({ cluster: 'c', receivedAt: '2026-01-01T00:00:00Z', event });
      ids.add(_id);
      expect(doc['@timestamp']).toBe(event.requestReceivedTimestamp);
      expect(get(doc, 'kubernetes.audit.auditID')).toBe(event.auditID);
    }
    // RequestReceived and ResponseComplete of one request are two events, two documents.
    expect(ids.size).toBe(new Set(events.map((e) => JSON.stringify(e))).size);
  });
});

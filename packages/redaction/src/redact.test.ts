import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AuditEvent, REDACTED_ANNOTATION } from '@kaudit/audit-schema';
import { buildEvent, loadSampleEvents, samplesDir } from '@kaudit/testkit';
import { DEFAULT_REDACTION_POLICY, LAST_APPLIED_ANNOTATION, parseRedactionPolicy } from './policy';
import { createRedactor } from './redact';

const redact = createRedactor(DEFAULT_REDACTION_POLICY);
const SECRET = 'c3VwZXItc2VjcmV0LXBsYW50ZWQ='; // planted: must never survive
const OTHER = 'planted-string-data-value';

/** Every value of data/stringData in an object, its items, and the last-applied annotation. */
function secretValues(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  const object = body as Record<string, unknown>;
  const out: string[] = [];
  for (const field of ['data', 'stringData'])
    if (typeof object[field] === 'object' && object[field] !== null)
      out.push(...Object.values(object[field] as Record<string, string>));
  const annotations = (object.metadata as { annotations?: Record<string, string> } | undefined)?.annotations;
  if (annotations?.[LAST_APPLIED_ANNOTATION]) out.push(annotations[LAST_APPLIED_ANNOTATION]);
  if (Array.isArray(object.items)) out.push(...object.items.flatMap(secretValues));
  return out;
}

function secretEvent(overrides: Partial<AuditEvent> & Record<string, unknown>): AuditEvent {
  return buildEvent({ level: 'RequestResponse', ...overrides });
}

const secret = (extra: Record<string, unknown> = {}) => ({
  kind: 'Secret',
  apiVersion: 'v1',
  metadata: {
    name: 'db',
    namespace: 'default',
    annotations: { [LAST_APPLIED_ANNOTATION]: JSON.stringify({ data: { password: SECRET } }), team: 'a' },
  },
  data: { password: SECRET },
  stringData: { other: OTHER },
  type: 'Opaque',
  ...extra,
});

describe('redaction > falco secret samples', () => {
  const files = readdirSync(join(samplesDir, 'falco-secrets')).filter((f) =>
    f.endsWith('.requestresponse.json'),
  );

  it.each(files)('%s: no secret value survives', (file) => {
    const [event] = loadSampleEvents(`falco-secrets/${file}`);
    const values = [...secretValues(event!.requestObject), ...secretValues(event!.responseObject)];
    const { event: out } = redact(event!);
    const text = JSON.stringify(out);
    for (const value of values) expect(text).not.toContain(value);
    // The raw file really held them (the test would pass vacuously otherwise), except delete_secret.
    if (!file.startsWith('delete')) expect(values.length).toBeGreaterThan(0);
    expect(readFileSync(join(samplesDir, 'falco-secrets', file), 'utf8')).toContain(values[0] ?? '');
  });

  it('marks the redacted event and keeps its metadata', () => {
    const [event] = loadSampleEvents('falco-secrets/create_secret.requestresponse.json');
    const { event: out, redactedPaths } = redact(event!);
    expect(redactedPaths).toEqual(['requestObject.data', 'responseObject.data']);
    expect(out.annotations?.[REDACTED_ANNOTATION]).toBe('requestObject.data,responseObject.data');
    expect(out.annotations?.['authorization.k8s.io/decision']).toBe('allow');
    expect((out.responseObject as { metadata: { name: string } }).metadata.name).toBe('sysdig-agent');
    expect((out.responseObject as { type: string }).type).toBe('Opaque');
  });

  it('leaves a delete (DeleteOptions and Status bodies) intact and unmarked', () => {
    const [event] = loadSampleEvents('falco-secrets/delete_secret.requestresponse.json');
    const result = redact(event!);
    expect(result.redactedPaths).toEqual([]);
    expect(result.event).toBe(event);
  });

  it('does not touch the input', () => {
    const [event] = loadSampleEvents('falco-secrets/create_secret.requestresponse.json');
    const before = JSON.stringify(event);
    redact(event!);
    expect(JSON.stringify(event)).toBe(before);
  });

  it('returns Metadata-level events as they are', () => {
    for (const event of loadSampleEvents('falco-secrets/create_secret.metadata.json'))
      expect(redact(event)).toEqual({ event, redactedPaths: [] });
  });
});

describe('redaction > secrets', () => {
  const ref = { resource: 'secrets', namespace: 'default', name: 'db', apiVersion: 'v1' };

  it.each([
    ['a Secret', { verb: 'create', requestObject: secret(), responseObject: secret() }],
    [
      'a SecretList',
      { verb: 'list', responseObject: { kind: 'SecretList', apiVersion: 'v1', items: [secret(), secret()] } },
    ],
    [
      'a Table with full objects',
      {
        verb: 'list',
        responseObject: {
          kind: 'Table',
          apiVersion: 'meta.k8s.io/v1',
          rows: [{ cells: ['db', SECRET], object: secret() }],
        },
      },
    ],
    [
      'a merge patch',
      { verb: 'patch', requestObject: { data: { password: SECRET }, stringData: { x: OTHER } } },
    ],
    [
      'a strategic merge patch carrying last-applied',
      {
        verb: 'patch',
        requestObject: {
          metadata: { annotations: { [LAST_APPLIED_ANNOTATION]: `{"data":{"password":"${SECRET}"}}` } },
          data: { password: SECRET },
        },
      },
    ],
    [
      'a JSON patch',
      {
        verb: 'patch',
        requestObject: [
          { op: 'replace', path: '/data/password', value: SECRET },
          { op: 'add', path: '/stringData', value: { x: OTHER } },
          { op: 'test', path: '/data', value: { password: SECRET } },
          {
            op: 'add',
            path: '/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration',
            value: SECRET,
          },
          {
            op: 'add',
            path: '/metadata',
            value: { annotations: { [LAST_APPLIED_ANNOTATION]: SECRET }, name: 'db' },
          },
          { op: 'replace', path: '', value: secret() },
        ],
      },
    ],
    [
      'a WatchEvent',
      { verb: 'watch', responseObject: { kind: 'WatchEvent', type: 'ADDED', object: secret() } },
    ],
  ])('strips values from %s', (_name, overrides) => {
    const { event, redactedPaths } = redact(secretEvent({ objectRef: ref, ...overrides }));
    const text = JSON.stringify(event);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(OTHER);
    expect(redactedPaths.length).toBeGreaterThan(0);
    expect(event.annotations?.[REDACTED_ANNOTATION]).toBe(redactedPaths.join(','));
  });

  it('keeps what is not secret and names the paths with wildcards for list items', () => {
    const { event, redactedPaths } = redact(
      secretEvent({
        objectRef: ref,
        verb: 'list',
        responseObject: { kind: 'SecretList', items: [secret(), secret()] },
      }),
    );
    const items = (event.responseObject as { items: Array<Record<string, unknown>> }).items;
    expect(items[1]).toEqual({
      kind: 'Secret',
      apiVersion: 'v1',
      metadata: { name: 'db', namespace: 'default', annotations: { team: 'a' } },
      type: 'Opaque',
    });
    expect(redactedPaths).toEqual([
      'responseObject.items[*].data',
      'responseObject.items[*].stringData',
      'responseObject.items[*].metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]',
    ]);
  });

  it('drops the patch a mutating webhook applied to a Secret (recorded as an audit annotation)', () => {
    const patch = JSON.stringify({
      configuration: 'injector',
      webhook: 'inject.example.com',
      patch: [{ op: 'add', path: '/data/token', value: SECRET }],
      patchType: 'JSONPatch',
    });
    const key = 'patch.webhook.admission.k8s.io/round_0_index_0';
    const { event, redactedPaths } = redact(
      buildEvent({
        level: 'Request',
        objectRef: ref,
        verb: 'create',
        annotations: { [key]: patch, 'authorization.k8s.io/decision': 'allow' },
      }),
    );
    expect(JSON.stringify(event)).not.toContain(SECRET);
    expect(redactedPaths).toEqual(['annotations["patch.webhook.admission.k8s.io/*"]']);
    expect(event.annotations?.['authorization.k8s.io/decision']).toBe('allow');
    // Other resources keep the annotation: it says which webhook changed what.
    const pod = buildEvent({ objectRef: { resource: 'pods', name: 'p' }, annotations: { [key]: patch } });
    expect(redact(pod).event).toBe(pod);
  });

  it('keeps the harmless parts of a JSON patch', () => {
    const { event } = redact(
      secretEvent({
        objectRef: ref,
        verb: 'patch',
        requestObject: [
          { op: 'replace', path: '/data/password', value: SECRET },
          { op: 'add', path: '/metadata/labels/team', value: 'payments' },
          {
            op: 'add',
            path: '/metadata',
            value: { annotations: { [LAST_APPLIED_ANNOTATION]: SECRET }, name: 'db' },
          },
        ],
      }),
    );
    expect(event.requestObject).toEqual([
      { op: 'replace', path: '/data/password' },
      { op: 'add', path: '/metadata/labels/team', value: 'payments' },
      { op: 'add', path: '/metadata', value: { annotations: {}, name: 'db' } },
    ]);
  });

  it.each([
    ['a string body', 'data:\n  password: c2VjcmV0'],
    ['an object of another kind', { kind: 'Opaque', data: { password: SECRET } }],
    ['a list with a non-object item', { kind: 'SecretList', items: [SECRET] }],
    ['a list with an item of another kind', { kind: 'List', items: [{ kind: 'Weird', blob: SECRET }] }],
    ['a patch operation without a path', [{ op: 'add', value: SECRET }]],
    ['a patch operation with a relative path', [{ op: 'add', path: 'data/x', value: SECRET }]],
    ['items that are not an array', { kind: 'SecretList', items: { a: SECRET } }],
    ['a number for kind', { kind: 7, data: SECRET }],
  ])('drops %s whole and says so (fail closed)', (_name, body) => {
    const { event, redactedPaths } = redact(
      secretEvent({ objectRef: ref, verb: 'create', requestObject: body }),
    );
    expect(event.requestObject).toBeUndefined();
    expect(redactedPaths).toEqual(['requestObject']);
    expect(JSON.stringify(event)).not.toContain(SECRET);
  });

  it('removes a field on the way that is not an object (it cannot be vetted)', () => {
    const { event, redactedPaths } = redact(
      secretEvent({ objectRef: ref, verb: 'create', requestObject: { kind: 'Secret', metadata: SECRET } }),
    );
    expect(event.requestObject).toEqual({ kind: 'Secret' });
    expect(redactedPaths).toEqual(['requestObject.metadata']);
  });
});

describe('redaction > tokens', () => {
  it('drops status.token of a TokenRequest in both bodies', () => {
    const tokenRequest = (token?: string) => ({
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3600 },
      status: token ? { token, expirationTimestamp: '2026-01-05T11:00:00Z' } : {},
    });
    const { event, redactedPaths } = redact(
      secretEvent({
        verb: 'create',
        requestURI: '/api/v1/namespaces/default/serviceaccounts/builder/token',
        objectRef: {
          resource: 'serviceaccounts',
          subresource: 'token',
          namespace: 'default',
          name: 'builder',
        },
        requestObject: tokenRequest(SECRET),
        responseObject: tokenRequest(`eyJhbGciOi.${SECRET}`),
      }),
    );
    expect(JSON.stringify(event)).not.toContain(SECRET);
    expect(redactedPaths).toEqual(['requestObject.status.token', 'responseObject.status.token']);
    expect((event.responseObject as { status: unknown }).status).toEqual({
      expirationTimestamp: '2026-01-05T11:00:00Z',
    });
  });

  it('drops spec.token of a TokenReview in both bodies', () => {
    const review = { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', spec: { token: SECRET } };
    const { event, redactedPaths } = redact(
      secretEvent({
        verb: 'create',
        requestURI: '/apis/authentication.k8s.io/v1/tokenreviews',
        objectRef: { resource: 'tokenreviews', apiGroup: 'authentication.k8s.io', apiVersion: 'v1' },
        requestObject: review,
        responseObject: { ...review, status: { authenticated: true, user: { username: 'bob' } } },
      }),
    );
    expect(JSON.stringify(event)).not.toContain(SECRET);
    expect(redactedPaths).toEqual(['requestObject.spec.token', 'responseObject.spec.token']);
    expect((event.responseObject as { status: unknown }).status).toEqual({
      authenticated: true,
      user: { username: 'bob' },
    });
  });

  it('leaves serviceaccounts without the token subresource alone', () => {
    const sa = { kind: 'ServiceAccount', apiVersion: 'v1', metadata: { name: 'builder' } };
    const input = secretEvent({
      objectRef: { resource: 'serviceaccounts', name: 'builder' },
      responseObject: sa,
    });
    expect(redact(input).event).toBe(input);
  });
});

describe('redaction > secrets inside other resources', () => {
  it('redacts a Secret found anywhere in another resource’s body', () => {
    const { event, redactedPaths } = redact(
      secretEvent({
        verb: 'create',
        objectRef: { resource: 'sealedsecrets', apiGroup: 'bitnami.com', name: 'x' },
        requestObject: { kind: 'List', items: [{ kind: 'Deployment' }, secret()] },
        responseObject: { kind: 'Wrapper', spec: { template: secret() } },
      }),
    );
    expect(JSON.stringify(event)).not.toContain(SECRET);
    expect(JSON.stringify(event)).not.toContain(OTHER);
    expect(redactedPaths).toContain('requestObject.items[*].data');
    expect(redactedPaths).toContain('responseObject.spec.template.stringData');
    expect((event.requestObject as { items: unknown[] }).items[0]).toEqual({ kind: 'Deployment' });
  });

  it('leaves other resources alone, unmarked, and uncopied', () => {
    const [event] = loadSampleEvents('minikube/privileged-pod.jsonl');
    const result = redact(event!);
    expect(result.event).toBe(event);
    expect(result.redactedPaths).toEqual([]);
  });

  it('drops a body nested too deep to inspect', () => {
    let deep: Record<string, unknown> = { kind: 'Secret', data: { password: SECRET } };
    for (let i = 0; i < 150; i++) deep = { nested: deep };
    const { event, redactedPaths } = redact(
      secretEvent({ objectRef: { resource: 'configmaps', name: 'x' }, requestObject: deep }),
    );
    expect(event.requestObject).toBeUndefined();
    expect(redactedPaths).toEqual(['requestObject']);
  });

  it.each([
    ['a redacted resource', { resource: 'secrets', name: 'x' }],
    ['any other resource', { resource: 'configmaps', name: 'x' }],
  ])('drops a body nested thousands deep without overflowing the stack (%s)', (_name, objectRef) => {
    const { event, redactedPaths } = redact(
      secretEvent({ objectRef, requestObject: JSON.parse(deeplyNested(20_000)) }),
    );
    expect(event.requestObject).toBeUndefined();
    expect(redactedPaths).toEqual(['requestObject']);
    expect(() => JSON.stringify(event)).not.toThrow();
  });
});

/** `{"a":{"a":…1…}}`: about 100 KB at 20,000 levels, well past the depth V8 can clone or stringify. */
function deeplyNested(levels: number): string {
  return `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
}

describe('redaction > configured resources', () => {
  const policy = parseRedactionPolicy({
    ...DEFAULT_REDACTION_POLICY,
    rules: [
      ...DEFAULT_REDACTION_POLICY.rules,
      { resource: 'configmaps', kind: 'ConfigMap', paths: ['data', 'binaryData'] },
      { group: 'example.com', resource: 'vaults', paths: ['spec.credentials["api-key"]'] },
    ],
  });
  const custom = createRedactor(policy);

  it('redacts a ConfigMap and its last-applied annotation', () => {
    const cm = {
      kind: 'ConfigMap',
      metadata: { name: 'c', annotations: { [LAST_APPLIED_ANNOTATION]: SECRET } },
      data: { k: SECRET },
    };
    const { event, redactedPaths } = custom(
      secretEvent({ objectRef: { resource: 'configmaps', name: 'c' }, responseObject: cm }),
    );
    expect(JSON.stringify(event)).not.toContain(SECRET);
    expect(redactedPaths).toEqual([
      'responseObject.data',
      'responseObject.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]',
    ]);
  });

  it('redacts a CRD field with a bracketed name, keeping the rest', () => {
    const { event } = custom(
      secretEvent({
        objectRef: { resource: 'vaults', apiGroup: 'example.com', name: 'v' },
        requestObject: { kind: 'Vault', spec: { credentials: { 'api-key': SECRET, user: 'svc' } } },
      }),
    );
    expect(event.requestObject).toEqual({ kind: 'Vault', spec: { credentials: { user: 'svc' } } });
  });
});

describe('redaction > raw items for the dead-letter topic', () => {
  it('redacts an invalid event like a valid one, and withholds the fields that failed validation', () => {
    const { raw, redactedPaths, note } = redact.redactRaw({
      verb: 42,
      objectRef: { resource: 'secrets', name: 'db' },
      responseObject: secret(),
    });
    expect(JSON.stringify(raw)).not.toContain(SECRET);
    expect(redactedPaths).toContain('responseObject.data');
    expect(raw).not.toHaveProperty('verb');
    expect(note).toBe('verb failed validation and was withheld');
  });

  it('drops a webhook patch annotation of a redacted resource', () => {
    const key = 'patch.webhook.admission.k8s.io/round_0_index_0';
    const { raw } = redact.redactRaw({
      verb: 'create',
      objectRef: { resource: 'secrets' },
      annotations: { [key]: SECRET, a: 'b' },
    });
    expect(raw).toEqual({ verb: 'create', objectRef: { resource: 'secrets' }, annotations: { a: 'b' } });
  });

  it('drops the bodies when the resource cannot be told', () => {
    const { raw, redactedPaths } = redact.redactRaw({
      objectRef: 'secrets/db',
      requestObject: { data: { password: SECRET } },
      verb: 'create',
    });
    expect(raw).toEqual({ verb: 'create' });
    expect(redactedPaths).toEqual(['objectRef', 'requestObject']);
  });

  it('drops the bodies of an item without objectRef, which a kind-less merge patch would pass', () => {
    const { raw, redactedPaths, note } = redact.redactRaw({
      verb: 'patch',
      requestObject: { data: { password: SECRET } },
      responseObject: { kind: 'Status' },
    });
    expect(raw).toEqual({ verb: 'patch' });
    expect(redactedPaths).toEqual(['requestObject', 'responseObject']);
    expect(note).toMatch(/^requestObject and responseObject withheld: no valid objectRef/);
  });

  it('keeps the bodies of an item whose resource is known and not redacted', () => {
    const item = { verb: 'get', objectRef: { resource: 'pods' }, requestObject: { spec: { x: 1 } } };
    expect(redact.redactRaw(item)).toEqual({ raw: item, redactedPaths: [], note: undefined });
  });

  it('never quotes or keeps a key of a field that failed validation (it may be the secret)', () => {
    const result = redact.redactRaw({
      verb: 'get',
      objectRef: { resource: 'pods' },
      annotations: { [SECRET]: 5 },
      user: { username: 'u', extra: { [OTHER]: 'not-a-list' } },
      [`x-${SECRET}`]: 1,
    });
    const text = JSON.stringify(result);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(OTHER);
    expect(result.note).toBe(
      'annotations, user failed validation and were withheld; 1 field(s) an audit event does not have withheld',
    );
  });

  it('never overflows the stack on an item nested thousands deep', () => {
    const deep = JSON.parse(deeplyNested(20_000));
    expect(redact.redactRaw(deep)).toMatchObject({
      raw: null,
      note: expect.stringMatching(/not an audit event/),
    });
    expect(redact.redactRaw([deep])).toMatchObject({ raw: null, note: expect.stringMatching(/an array/) });
    const item = { objectRef: { resource: 'pods' }, requestObject: deep, user: deep };
    expect(redact.redactRaw(item)).toMatchObject({
      raw: { objectRef: { resource: 'pods' } },
      redactedPaths: ['user', 'requestObject'],
      note: expect.stringMatching(/requestObject withheld: nested too deep/),
    });
  });

  it('withholds whatever is not a single event object: a Secret, an envelope, an array, a string, a number', () => {
    for (const item of [
      secret(),
      { cluster: 'c', receivedAt: '2024-01-01T00:00:00Z', event: { verb: 'get', requestObject: secret() } },
      [secret()],
      `{"data":{"password":"${SECRET}"}}`,
      7,
    ]) {
      const result = redact.redactRaw(item);
      expect(result.raw).toBeNull();
      expect(result.note).toMatch(/withheld$/);
      expect(JSON.stringify(result)).not.toContain(SECRET);
    }
    expect(redact.redactRaw({ cluster: 'c', event: {} }).note).toMatch(/kaudit envelope/);
  });
});

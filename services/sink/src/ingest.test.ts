import {
  DeadLetterSchema,
  EnvelopeSchema,
  REDACTED_ANNOTATION,
  safeJsonError,
  TRUNCATED_ANNOTATION,
} from '@kaudit/audit-schema';
import type { Redactor } from '@kaudit/redaction';
import { createRedactor, DEFAULT_REDACTION_POLICY } from '@kaudit/redaction';
import { buildEvent } from '@kaudit/testkit';
import { ingestItems, MAX_ITEM_DEPTH, nestedDeeperThan } from './ingest';
import { decodeBody } from './read-body';

const options = {
  redactor: createRedactor(DEFAULT_REDACTION_POLICY),
  eventsTopic: 'events',
  dlqTopic: 'dlq',
};
const at = '2026-01-05T10:00:01.000Z';
const SECRET = 'cGxhbnRlZC1zZWNyZXQtdmFsdWU=';

function ingest(body: string, format: 'json' | 'ndjson' = 'json', maxMessageBytes?: number) {
  const decoded = decodeBody(Buffer.from(body), format);
  if (!decoded.ok) throw new Error(decoded.reason);
  return ingestItems(decoded.items, 'prod', at, {
    ...options,
    ...(maxMessageBytes ? { maxMessageBytes } : {}),
  });
}

describe('sink > ingest > decoding', () => {
  it.each([
    [
      'an EventList',
      JSON.stringify({
        kind: 'EventList',
        apiVersion: 'audit.k8s.io/v1',
        items: [buildEvent(), buildEvent()],
      }),
      2,
    ],
    ['a single Event', JSON.stringify(buildEvent()), 1],
    ['an array', JSON.stringify([buildEvent(), buildEvent(), buildEvent()]), 3],
    ['an EventList with a BOM', `\uFEFF${JSON.stringify({ kind: 'EventList', items: [buildEvent()] })}`, 1],
  ])('takes %s', (_name, body, count) => {
    const decoded = decodeBody(Buffer.from(body), 'json');
    expect(decoded.ok && decoded.items.length).toBe(count);
  });

  it.each([
    ['', /body is empty/],
    ['{"kind":"EventList","items":', /body is not valid JSON \(unexpected end of input\)/],
    ['{"a":1} {"b":2}', /more than one JSON value/],
    ['{"kind":"EventList","items":{}}', /EventList\.items must be an array/],
    ['"just a string"', /must be an audit\.k8s\.io\/v1 EventList or Event object/],
    ['null', /must be an audit\.k8s\.io\/v1 EventList or Event object/],
  ])('explains why %j is refused', (body, reason) => {
    const decoded = decodeBody(Buffer.from(body), 'json');
    expect(decoded.ok ? '' : decoded.reason).toMatch(reason);
  });

  it('never quotes the input in a JSON error (it could be a secret)', () => {
    const decoded = decodeBody(Buffer.from(`password=${SECRET}`), 'json');
    expect(decoded.ok ? '' : decoded.reason).not.toContain(SECRET.slice(0, 8));
    expect(safeJsonError(new Error(`Unexpected token 'p', "password=${SECRET}" is not valid JSON`))).toBe(
      'syntax error',
    );
    expect(safeJsonError(new Error(`Unexpected token 'M', "MK" is not valid JSON at position 7`))).toBe(
      'at position 7',
    );
  });

  it('reads JSON lines, keeping good lines around a bad one', () => {
    const body = [JSON.stringify(buildEvent()), `{"data":"${SECRET}`, '', JSON.stringify(buildEvent())].join(
      '\n',
    );
    const result = ingest(body, 'ndjson');
    expect(result.accepted).toBe(2);
    expect(result.rejected).toBe(1);
    expect(result.errors).toEqual([{ index: 1, reason: expect.stringMatching(/^line 2: not valid JSON/) }]);
    expect(JSON.stringify(result)).not.toContain(SECRET);
  });
});

describe('sink > ingest > messages', () => {
  it('keys each event by cluster and effective identity and wraps it in an envelope', () => {
    const impersonated = buildEvent({ impersonatedUser: { username: 'bob' } });
    const result = ingest(JSON.stringify({ kind: 'EventList', items: [buildEvent(), impersonated] }));
    expect(result.messages.map((m) => [m.topic, m.key])).toEqual([
      ['events', 'prod/alice@example.com'],
      ['events', 'prod/bob'],
    ]);
    const envelope = EnvelopeSchema.parse(JSON.parse(result.messages[1]!.value));
    expect(envelope).toMatchObject({
      cluster: 'prod',
      receivedAt: at,
      event: { auditID: impersonated.auditID },
    });
  });

  it('puts copies of a chain step after it: a TokenRequest on its account’s key, an RBAC write on every partition', () => {
    const token = buildEvent({
      verb: 'create',
      requestURI: '/api/v1/namespaces/default/serviceaccounts/backup-helper/token',
      objectRef: {
        resource: 'serviceaccounts',
        namespace: 'default',
        name: 'backup-helper',
        subresource: 'token',
      },
      responseStatus: { code: 201 },
    });
    const binding = buildEvent({
      verb: 'create',
      requestURI: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
      objectRef: { resource: 'clusterrolebindings', name: 'x', apiGroup: 'rbac.authorization.k8s.io' },
      responseStatus: { code: 201 },
    });
    const refused = { ...binding, auditID: 'refused', responseStatus: { code: 403 } };
    const ownToken = buildEvent({
      ...token,
      auditID: 'own',
      user: { username: 'system:serviceaccount:default:backup-helper', groups: [] },
    });
    const result = ingest(
      JSON.stringify({ kind: 'EventList', items: [token, binding, refused, ownToken, buildEvent()] }),
    );
    expect(result.accepted).toBe(5);
    expect(
      result.messages.map((m) => [m.key, m.everyPartition ?? false, JSON.parse(m.value).copy ?? null]),
    ).toEqual([
      ['prod/alice@example.com', false, null],
      ['prod/system:serviceaccount:default:backup-helper', false, 'chain-step'],
      ['prod/alice@example.com', false, null],
      [null, true, 'chain-step'],
      ['prod/alice@example.com', false, null],
      ['prod/system:serviceaccount:default:backup-helper', false, null],
      ['prod/alice@example.com', false, null],
    ]);
    // A copy is the same envelope, marked: valid for the consumers, the same event inside.
    const [original, copy] = result.messages.map((m) => EnvelopeSchema.parse(JSON.parse(m.value)));
    expect(copy).toEqual({ ...original, copy: 'chain-step' });
  });

  it('dead-letters invalid items with the reason and the redacted raw item, keeping the valid ones', () => {
    const bad = {
      ...buildEvent({ level: 'RequestResponse' }),
      verb: '',
      responseObject: { kind: 'Secret', data: { k: SECRET } },
    };
    const result = ingest(JSON.stringify({ kind: 'EventList', items: [buildEvent(), bad, 42] }));
    expect(result).toMatchObject({ accepted: 1, rejected: 2 });
    expect(result.errors.map((e) => e.index)).toEqual([1, 2]);
    expect(result.errors[0]!.reason).toMatch(/verb/);
    const letters = result.messages
      .filter((m) => m.topic === 'dlq')
      .map((m) => DeadLetterSchema.parse(JSON.parse(m.value)));
    expect(letters).toHaveLength(2);
    expect(letters[0]).toMatchObject({
      source: 'sink',
      cluster: 'prod',
      at,
      reason: expect.stringMatching(/verb/),
    });
    // Fail closed: the field that failed validation is withheld, the rest of the event (redacted) kept.
    expect(letters[0]!.raw).not.toHaveProperty('verb');
    expect(letters[0]!.raw).toHaveProperty('auditID', bad.auditID);
    expect(letters[0]!.reason).toMatch(/verb failed validation and was withheld/);
    // Not an event object at all: no body, only the reason.
    expect(letters[1]!.raw).toBeNull();
    expect(letters[1]!.reason).toMatch(/a number, not an event object/);
    expect(JSON.stringify(result.messages)).not.toContain(SECRET);
  });

  it('redacts secrets before serializing, and counts it', () => {
    const event = buildEvent({
      level: 'RequestResponse',
      verb: 'create',
      requestObject: { kind: 'Secret', apiVersion: 'v1', data: { password: SECRET } },
    });
    const result = ingest(JSON.stringify(event));
    expect(result.redacted).toBe(1);
    expect(result.messages[0]!.value).not.toContain(SECRET);
    expect(JSON.parse(result.messages[0]!.value).event.annotations[REDACTED_ANNOTATION]).toBe(
      'requestObject.data',
    );
  });

  it('drops the bodies of an event too large for Kafka and says so', () => {
    const event = buildEvent({
      level: 'RequestResponse',
      objectRef: { resource: 'configmaps', name: 'big' },
      responseObject: { kind: 'ConfigMap', data: { blob: 'x'.repeat(5000) } },
    });
    const result = ingest(JSON.stringify(event), 'json', 4000);
    expect(result).toMatchObject({ accepted: 1, truncated: 1 });
    const out = JSON.parse(result.messages[0]!.value).event;
    expect(out.responseObject).toBeUndefined();
    expect(out.annotations[TRUNCATED_ANNOTATION]).toBe('responseObject');
    // The name is a contract (services/sink/README.md): renaming it must fail here.
    expect(Object.keys(out.annotations)).toContain('kaudit.dev/truncated');
  });

  it('rejects an event too large even without bodies', () => {
    const result = ingest(
      JSON.stringify(buildEvent({ annotations: { huge: 'y'.repeat(5000) } })),
      'json',
      4000,
    );
    expect(result).toMatchObject({ accepted: 0, rejected: 1 });
    expect(result.errors[0]!.reason).toMatch(/larger than 4000 bytes/);
    expect(result.messages[0]!.value.length).toBeLessThan(4000);
  });

  it('never throws, whatever the items are', () => {
    const items = [
      null,
      [],
      'x',
      1.5,
      { kind: 'Event' },
      { user: 'x' },
      { objectRef: 7, requestObject: SECRET },
    ];
    const result = ingestItems(
      items.map((raw) => ({ ok: true, raw, line: 1 })),
      'prod',
      at,
      options,
    );
    expect(result.rejected).toBe(items.length);
    expect(JSON.stringify(result.messages)).not.toContain(SECRET);
  });
});

/** `{"a":{"a":…1…}}`: 20,000 levels are about 100 KB, past the depth V8 can clone or stringify. */
const nested = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
const withRequestObject = (event: object, json: string) =>
  `${JSON.stringify(event).slice(0, -1)},"requestObject":${json}}`;
const deadLetters = (result: ReturnType<typeof ingestItems>) =>
  result.messages.filter((m) => m.topic === 'dlq').map((m) => DeadLetterSchema.parse(JSON.parse(m.value)));

describe('sink > ingest > one bad item never fails the batch', () => {
  it('dead-letters an item nested 20,000 deep without its content, and the others go on', () => {
    const deep = withRequestObject(buildEvent({ level: 'RequestResponse' }), nested(20_000));
    const result = ingest(
      `{"kind":"EventList","items":[${JSON.stringify(buildEvent())},${deep},${JSON.stringify(buildEvent())}]}`,
    );
    expect(result).toMatchObject({ accepted: 2, rejected: 1 });
    expect(result.errors).toEqual([
      { index: 1, reason: `item is nested deeper than ${MAX_ITEM_DEPTH} levels (raw item withheld)` },
    ]);
    expect(result.messages.map((m) => m.topic)).toEqual(['events', 'dlq', 'events']);
    expect(deadLetters(result)[0]!.raw).toBeNull();
  });

  it('dead-letters an invalid item nested 20,000 deep the same way', () => {
    const result = ingest(`[${nested(20_000)}, ${JSON.stringify(buildEvent())}]`);
    expect(result).toMatchObject({ accepted: 1, rejected: 1 });
    expect(deadLetters(result)[0]).toMatchObject({
      raw: null,
      reason: expect.stringMatching(/nested deeper/),
    });
  });

  it('keeps an event whose body alone is too deep to inspect, without that body', () => {
    const event = buildEvent({ level: 'RequestResponse', objectRef: { resource: 'configmaps', name: 'c' } });
    const result = ingest(withRequestObject(event, nested(150)));
    expect(result).toMatchObject({ accepted: 1, rejected: 0, redacted: 1 });
    const out = JSON.parse(result.messages[0]!.value).event;
    expect(out.requestObject).toBeUndefined();
    expect(out.annotations[REDACTED_ANNOTATION]).toBe('requestObject');
  });

  it('dead-letters an item whose validation, redaction or serialization throws, and goes on', () => {
    const throwing = Object.assign(
      (event: Parameters<Redactor>[0]) => {
        if (event.verb === 'boom') throw new RangeError(`Maximum call stack size exceeded near ${SECRET}`);
        return { event, redactedPaths: [] };
      },
      {
        redactRaw: () => {
          throw new TypeError(SECRET);
        },
      },
    ) as Redactor;
    const items = [buildEvent(), buildEvent({ verb: 'boom' }), { verb: 7 }, buildEvent()];
    const result = ingestItems(
      items.map((raw) => ({ ok: true, raw, line: 1 })),
      'prod',
      at,
      { ...options, redactor: throwing },
    );
    expect(result).toMatchObject({ accepted: 2, rejected: 2 });
    expect(result.errors).toEqual([
      { index: 1, reason: 'item could not be processed (RangeError; raw item withheld)' },
      { index: 2, reason: expect.stringMatching(/; the raw item could not be redacted \(TypeError\)$/) },
    ]);
    expect(deadLetters(result).map((l) => l.raw)).toEqual([null, null]);
    expect(JSON.stringify(result)).not.toContain(SECRET);
  });

  it('measures nesting without going deeper than the limit', () => {
    expect(nestedDeeperThan(JSON.parse(nested(3)), 3)).toBe(false);
    expect(nestedDeeperThan(JSON.parse(nested(4)), 3)).toBe(true);
    expect(nestedDeeperThan([[[1]]], 3)).toBe(false);
    expect(nestedDeeperThan([[[[]]]], 3)).toBe(true);
    expect(nestedDeeperThan(JSON.parse(nested(100_000)), MAX_ITEM_DEPTH)).toBe(true);
  });
});

describe('sink > ingest > dead letters of unknown resources', () => {
  it('drops the bodies of an invalid item without objectRef and says so in the reason', () => {
    const { objectRef: _ref, ...event } = buildEvent({ level: 'RequestResponse', verb: 'patch' });
    const result = ingest(
      JSON.stringify({ ...event, stage: 'Done', requestObject: { data: { password: SECRET } } }),
    );
    expect(result).toMatchObject({ accepted: 0, rejected: 1 });
    const [letter] = deadLetters(result);
    expect(letter!.reason).toMatch(/^stage: .*; requestObject withheld: no valid objectRef/);
    expect((letter!.raw as Record<string, unknown>).requestObject).toBeUndefined();
    expect(JSON.stringify(result.messages)).not.toContain(SECRET);
  });
});

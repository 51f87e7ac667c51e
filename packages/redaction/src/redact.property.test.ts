import { parseAuditEvent } from '@kaudit/audit-schema';
import { buildEvent } from '@kaudit/testkit';
import fc from 'fast-check';
import { DEFAULT_REDACTION_POLICY } from './policy';
import { createRedactor } from './redact';

/**
 * Properties of the redaction core over random event shapes: a value planted in a Secret-bearing
 * position (data, stringData, last-applied, a token, a webhook patch), under any spelling of the
 * resource and any body shape, never survives — for valid events and for dead-lettered raw items —
 * and a ConfigMap's values always do.
 */
const redact = createRedactor(DEFAULT_REDACTION_POLICY);
const PLANT = 'MKplantedZ';
const planted = fc.stringMatching(/^[A-Za-z0-9]{4,10}$/).map((s) => `${PLANT}${s}`);

const flipCase = (text: string) =>
  fc
    .array(fc.boolean(), { minLength: text.length, maxLength: text.length })
    .map((flips) => [...text].map((c, i) => (flips[i] ? c.toUpperCase() : c.toLowerCase())).join(''));
const anyCase = (text: string) => fc.oneof(fc.constant(text), flipCase(text));

interface Case {
  ref: fc.Arbitrary<Record<string, unknown>>;
  /** Objects of the resource with the value where the rule says values live (keys in any case). */
  object: (value: string) => fc.Arbitrary<Record<string, unknown>>;
  /** JSON patches writing the value there. */
  patch: (value: string) => fc.Arbitrary<unknown[]>;
}

const lastApplied = (value: string) =>
  anyCase('kubectl.kubernetes.io/last-applied-configuration').map((key) => ({
    metadata: { annotations: { [key]: JSON.stringify({ stringData: { pw: value } }) } },
  }));

/** Each protected resource, spelt as a client might: plural, singular, any case; group "", core. */
const cases: Case[] = [
  {
    ref: fc.record({
      resource: fc.oneof(anyCase('secrets'), anyCase('secret')),
      apiGroup: fc.constantFrom(undefined, '', 'core', 'CORE', ' core '),
      subresource: fc.constantFrom(undefined, 'status', ''),
    }),
    object: (value) =>
      fc.oneof(
        fc
          .tuple(anyCase('data'), fc.constantFrom(undefined, 'Secret', 'secret', 'SECRET'))
          .map(([key, kind]) => ({
            ...(kind ? { kind } : {}),
            [key]: { pw: Buffer.from(value).toString('base64') },
          })),
        anyCase('stringData').map((key) => ({ [key]: { pw: value } })),
        lastApplied(value),
      ),
    patch: (value) =>
      fc.oneof(
        anyCase('/data/pw').map((path) => [{ op: 'add', path, value }]),
        anyCase('/stringData').map((path) => [{ op: 'add', path, value: { pw: value } }]),
      ),
  },
  {
    ref: fc.record({ resource: anyCase('serviceaccounts'), subresource: anyCase('token') }),
    object: (value) =>
      fc.oneof(
        anyCase('token').map((key) => ({ status: { [key]: value } })),
        lastApplied(value),
      ),
    patch: (value) => anyCase('/status/token').map((path) => [{ op: 'add', path, value }]),
  },
  {
    ref: fc.record({ resource: anyCase('tokenreviews'), apiGroup: anyCase('authentication.k8s.io') }),
    object: (value) =>
      fc.oneof(
        anyCase('token').map((key) => ({ spec: { [key]: value } })),
        lastApplied(value),
      ),
    patch: (value) => anyCase('/spec').map((path) => [{ op: 'replace', path, value: { token: value } }]),
  },
];

/** The object in any of the shapes a body of the resource can have. */
const body = (c: Case, value: string) =>
  fc.oneof(
    c.patch(value),
    c
      .object(value)
      .chain((object) =>
        fc.constantFrom<unknown>(
          object,
          { type: 'MODIFIED', object },
          { kind: 'WatchEvent', type: 'ADDED', object },
          { items: [object] },
          { kind: 'List', items: [object] },
          { kind: 'Table', rows: [{ cells: [value], object }] },
          JSON.parse(`{"__proto__": ${JSON.stringify(object)}}`),
          [{ op: 'replace', path: '', value: object }],
          JSON.stringify(object),
        ),
      ),
  );

const protectedEvent = fc.tuple(planted, fc.constantFrom(...cases)).chain(([value, c]) =>
  fc
    .record({
      objectRef: c.ref,
      requestObject: body(c, value),
      responseObject: fc.option(body(c, value), { nil: undefined }),
      patch: fc.boolean(),
    })
    .map(({ objectRef, requestObject, responseObject, patch }) => ({
      value,
      event: buildEvent({
        level: 'RequestResponse',
        objectRef: { ...objectRef, namespace: 'ns', name: 's' },
        requestObject,
        ...(responseObject !== undefined ? { responseObject } : {}),
        ...(patch ? { annotations: { 'patch.webhook.admission.k8s.io/round_0_index_0': value } } : {}),
      }),
    })),
);

const contains = (output: unknown, value: string) => {
  const text = JSON.stringify(output);
  return text.includes(value) || text.includes(Buffer.from(value).toString('base64'));
};

describe('redaction > properties', () => {
  it('a planted value in a Secret-bearing position never survives, whatever the spelling and shape', () => {
    fc.assert(
      fc.property(protectedEvent, ({ value, event }) => {
        expect(contains(event, value)).toBe(true);
        expect(contains(redact(event).event, value)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('nor in a dead letter, whatever field of the item failed validation', () => {
    fc.assert(
      fc.property(
        protectedEvent,
        fc.constantFrom('verb', 'auditID', 'stage', 'user', 'annotations', 'objectRef', 'kind'),
        ({ value, event }, field) => {
          const item = { ...event, [field]: field === 'annotations' ? { [value]: 1 } : 42 };
          expect(parseAuditEvent(item).ok).toBe(false);
          expect(contains(redact.redactRaw(item), value)).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a planted Secret nested in another resource’s body never survives; a ConfigMap’s values always do', () => {
    fc.assert(
      fc.property(
        planted,
        fc.stringMatching(/^[a-z]{3,12}$/),
        fc.constantFrom('Secret', 'secret', 'SecretList'),
        (value, keep, kind) => {
          const nested =
            kind === 'SecretList'
              ? { kind, items: [{ data: { pw: value } }] }
              : { kind, data: { pw: value } };
          const event = buildEvent({
            level: 'RequestResponse',
            objectRef: { resource: 'configmaps', namespace: 'ns', name: 'cm' },
            requestObject: { kind: 'ConfigMap', data: { setting: keep } },
            responseObject: { kind: 'List', items: [{ kind: 'ConfigMap', data: { other: keep } }, nested] },
          });
          const out = redact(event).event;
          expect(contains(out, value)).toBe(false);
          expect(out.requestObject).toEqual({ kind: 'ConfigMap', data: { setting: keep } });
          expect(JSON.stringify(out.responseObject)).toContain(`"other":"${keep}"`);
        },
      ),
      { numRuns: 500 },
    );
  });
});

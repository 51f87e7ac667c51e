import {
  type AuditEvent,
  AuditEventSchema,
  ObjectReferenceSchema,
  REDACTED_ANNOTATION,
  UserInfoSchema,
} from '@kaudit/audit-schema';
import { type FieldPath, formatFieldPath, isPrefix, parseFieldPath } from './path';
import { LAST_APPLIED_ANNOTATION, type RedactionPolicy, type RedactionRule } from './policy';
import {
  type CompiledRule,
  isPlainObject,
  type Json,
  redactByKind,
  redactForResource,
  scanBody,
  understoodKinds,
} from './redact-body';

/**
 * Removes secret values from audit events before they leave the process. Pure and synchronous: the
 * input is never mutated; objects are cloned only when something in them has to go.
 *
 * Fails closed: a body is kept only when it is known not to carry a protected value.
 * - The event's resource is classified from objectRef, normalised (any case, `core` or "" for the core
 *   group): a resource a rule protects, another resource, or unknown (no objectRef, no resource).
 * - Bodies of an unknown resource are dropped: a kind-less merge patch `{"data": …}` could be a Secret's.
 * - Bodies of a protected resource must have a shape its rule understands (redact-body.ts), else go whole.
 * - Bodies of other resources are kept, less any object of a protected kind found in them (in any case).
 * - Fields the audit.k8s.io/v1 Event does not have (top level, user, objectRef) are dropped: nothing vets
 *   what they hold. So are the mutating-webhook patch annotations of protected and unknown resources.
 * Everything removed is named in the `kaudit.dev/redacted` annotation.
 */
export interface RedactionResult {
  event: AuditEvent;
  /** Where something was removed, e.g. `responseObject.items[*].data`; empty when nothing was. */
  redactedPaths: string[];
}

export interface RawRedactionResult {
  /** What of the item may go to the dead-letter topic; null when nothing of it may. */
  raw: unknown;
  redactedPaths: string[];
  /** Why parts were withheld, for the dead letter's reason (field names only); undefined when none were. */
  note: string | undefined;
}

export interface Redactor {
  (event: AuditEvent): RedactionResult;
  /** For items that failed validation (on their way to the dead-letter topic): any shape at all. */
  redactRaw(raw: unknown): RawRedactionResult;
}

const DROP = Symbol('drop');
/** Bodies of this resource class go whole. */
const UNKNOWN = Symbol('unknown resource');
/** A resource no rule protects. */
const OTHER = Symbol('other resource');
type ResourceClass = CompiledRule | typeof UNKNOWN | typeof OTHER;

const EVENT_FIELDS: ReadonlySet<string> = new Set(Object.keys(AuditEventSchema.shape));
const USER_FIELDS: ReadonlySet<string> = new Set(Object.keys(UserInfoSchema.shape));
const REF_FIELDS: ReadonlySet<string> = new Set(Object.keys(ObjectReferenceSchema.shape));
/** Nested objects of the event whose unknown keys are dropped too. */
const NESTED_FIELDS: Record<string, ReadonlySet<string>> = {
  user: USER_FIELDS,
  impersonatedUser: USER_FIELDS,
  objectRef: REF_FIELDS,
};

const LAST_APPLIED_PATH: FieldPath = ['metadata', 'annotations', LAST_APPLIED_ANNOTATION];
/** Audit annotations in which the API server records the patch a mutating admission webhook applied. */
const WEBHOOK_PATCH_PREFIX = 'patch.webhook.admission.k8s.io/';

export function createRedactor(policy: RedactionPolicy): Redactor {
  const rules = policy.rules.map((rule) => compileRule(rule, policy.stripLastAppliedConfiguration));
  // Exact subresource rules first, so serviceaccounts/token beats a rule for all of serviceaccounts.
  rules.sort((a, b) => Number(b.subresource !== undefined) - Number(a.subresource !== undefined));
  const byKind = new Map<string, CompiledRule>();
  for (const rule of rules) if (rule.kind && !byKind.has(rule.kind)) byKind.set(rule.kind, rule);

  function classify(ref: unknown): ResourceClass {
    if (!isPlainObject(ref) || typeof ref.resource !== 'string' || ref.resource.trim() === '') return UNKNOWN;
    const optional = (v: unknown) => (typeof v === 'string' ? v.trim().toLowerCase() : undefined);
    if (
      (ref.apiGroup !== undefined && typeof ref.apiGroup !== 'string') ||
      (ref.subresource !== undefined && typeof ref.subresource !== 'string')
    )
      return UNKNOWN;
    const resource = ref.resource.trim().toLowerCase();
    const group = optional(ref.apiGroup) ?? '';
    const subresource = optional(ref.subresource);
    const rule = rules.find(
      (r) =>
        // The plural objectRef always carries, and (failing closed) its singular or kind as a client wrote it.
        (r.resource === resource || r.resource === `${resource}s` || r.kind === resource) &&
        (r.group === group || (r.group === '' && group === 'core')) &&
        (r.subresource === undefined || r.subresource === subresource),
    );
    return rule ?? OTHER;
  }

  /** One body (requestObject or responseObject); DROP when it must go whole. */
  function redactBody(value: unknown, cls: ResourceClass, base: string, found: Set<string>): unknown {
    if (cls === UNKNOWN) {
      found.add(base);
      return DROP;
    }
    // Checked before anything recursive of V8's runs on the value: structuredClone (and JSON.stringify
    // later) throw RangeError on a body nested some thousands deep, which a 100 KB request can be.
    const scan = scanBody(value, byKind);
    if (scan === 'too deep') {
      found.add(base);
      return DROP;
    }
    if (cls === OTHER && scan === 'clean') return value;
    if (typeof value !== 'object' || value === null) {
      // A string or number body of a protected resource (a YAML manifest sent as text): not vettable.
      if (cls === OTHER) return value;
      found.add(base);
      return DROP;
    }
    const copy = structuredClone(value);
    if (
      (cls !== OTHER && !redactForResource(copy, cls, base, found)) ||
      !redactByKind(copy, byKind, base, [], found)
    ) {
      found.add(base);
      return DROP;
    }
    return copy;
  }

  /** The event (or the fields of an invalid item that validated) with everything unvetted removed. */
  function redactFields(fields: Json, found: Set<string>): Json {
    const cls = classify(fields.objectRef);
    const out: Json = {};
    for (const key of Object.keys(fields)) {
      const value = fields[key];
      if (!EVENT_FIELDS.has(key)) {
        found.add('*'); // the field's name is the sender's: it may be a secret itself
        continue;
      }
      if (key === 'requestObject' || key === 'responseObject') {
        const body = redactBody(value, cls, key, found);
        if (body !== DROP) out[key] = body;
        continue;
      }
      const nested = NESTED_FIELDS[key];
      out[key] = nested && isPlainObject(value) ? knownKeysOnly(value, nested, key, found) : value;
    }
    if (cls !== OTHER && isPlainObject(out.annotations)) {
      // A mutating webhook's JSON patch, recorded as an annotation: for a protected (or unknown)
      // resource it can carry the very values the bodies lost.
      const annotations = { ...out.annotations };
      for (const key of Object.keys(annotations))
        if (key.toLowerCase().startsWith(WEBHOOK_PATCH_PREFIX)) {
          delete annotations[key];
          found.add(formatFieldPath('annotations', [`${WEBHOOK_PATCH_PREFIX}*`]));
        }
      out.annotations = annotations;
    }
    return out;
  }

  const redact = ((event: AuditEvent): RedactionResult => {
    if (isPlain(event)) return { event, redactedPaths: [] };
    const found = new Set<string>();
    const out = redactFields(event, found) as AuditEvent;
    if (found.size === 0) return { event, redactedPaths: [] };
    const redactedPaths = [...found];
    out.annotations = { ...out.annotations, [REDACTED_ANNOTATION]: redactedPaths.join(',') };
    return { event: out, redactedPaths };
  }) as Redactor;

  redact.redactRaw = (raw: unknown): RawRedactionResult => {
    if (!isPlainObject(raw))
      return {
        raw: null,
        redactedPaths: ['(root)'],
        note: `the item is ${describe(raw)}, not an event object, and was withheld`,
      };
    if (!looksLikeEvent(raw))
      return {
        raw: null,
        redactedPaths: ['(root)'],
        note:
          'event' in raw && 'cluster' in raw
            ? 'the item is a kaudit envelope {cluster, receivedAt, event}, not an audit event, and was withheld'
            : 'the item is not an audit event object and was withheld',
      };
    // Only the fields that validate on their own go on: an invalid one (annotations of numbers, a
    // user.extra that is no map of lists) cannot be vetted, and its keys may be secrets themselves.
    const valid: Json = {};
    const invalid: string[] = [];
    for (const key of Object.keys(raw)) {
      const schema = (
        AuditEventSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>
      )[key];
      if (schema === undefined || schema.safeParse(raw[key]).success) valid[key] = raw[key];
      else invalid.push(key);
    }
    const found = new Set<string>(invalid);
    const out = redactFields(valid, found);
    const notes: string[] = [];
    if (invalid.length > 0)
      notes.push(
        `${invalid.join(', ')} failed validation and ${invalid.length > 1 ? 'were' : 'was'} withheld`,
      );
    const bodies = (['requestObject', 'responseObject'] as const).filter((k) => k in valid && !(k in out));
    if (bodies.length > 0)
      notes.push(
        classify(valid.objectRef) === UNKNOWN
          ? `${bodies.join(' and ')} withheld: no valid objectRef, so the resource and its secret fields are unknown`
          : `${bodies.join(' and ')} withheld: nested too deep or of a shape the redaction policy cannot vet`,
      );
    const unknown = Object.keys(valid).filter((k) => !EVENT_FIELDS.has(k)).length;
    if (unknown > 0) notes.push(`${unknown} field(s) an audit event does not have withheld`);
    return { raw: out, redactedPaths: [...found], note: notes.length > 0 ? notes.join('; ') : undefined };
  };

  return redact;
}

/** No body, no annotation to vet, no field beyond the Event's: nothing to do, no copy. */
function isPlain(event: AuditEvent): boolean {
  if (event.requestObject !== undefined || event.responseObject !== undefined) return false;
  for (const key in event) if (!EVENT_FIELDS.has(key)) return false;
  for (const key in NESTED_FIELDS) {
    const value = (event as Json)[key];
    if (isPlainObject(value)) for (const k in value) if (!NESTED_FIELDS[key]!.has(k)) return false;
  }
  if (event.annotations)
    for (const key in event.annotations) if (key.toLowerCase().startsWith(WEBHOOK_PATCH_PREFIX)) return false;
  return true;
}

function knownKeysOnly(value: Json, known: ReadonlySet<string>, base: string, found: Set<string>): Json {
  let out: Json | undefined;
  for (const key of Object.keys(value))
    if (!known.has(key)) {
      out ??= { ...value };
      delete out[key];
      found.add(formatFieldPath(base, [key]));
    }
  return out ?? value;
}

/** An object that says it is an audit event by its own fields (an Event or one that failed validation). */
function looksLikeEvent(raw: Json): boolean {
  if (raw.kind !== undefined && raw.kind !== 'Event') return false;
  return ['auditID', 'verb', 'requestURI', 'stage', 'user', 'objectRef', 'level'].some((k) => k in raw);
}

function describe(raw: unknown): string {
  if (Array.isArray(raw)) return `an array of ${raw.length} element(s)`;
  if (typeof raw === 'string') return `a string of ${raw.length} characters`;
  if (raw === null) return 'null';
  return `a ${typeof raw}`;
}

function compileRule(rule: RedactionRule, stripLastApplied: boolean): CompiledRule {
  const paths = rule.paths.map(parseFieldPath);
  if (stripLastApplied && !paths.some((p) => samePath(p, LAST_APPLIED_PATH))) paths.push(LAST_APPLIED_PATH);
  const kind = rule.kind?.toLowerCase();
  return {
    group: rule.group.toLowerCase(),
    resource: rule.resource.toLowerCase(),
    subresource: rule.subresource?.toLowerCase(),
    kind,
    paths,
    understoodKinds: understoodKinds(kind),
  };
}

function samePath(a: FieldPath, b: FieldPath): boolean {
  return a.length === b.length && isPrefix(a, b);
}

import { type AuditEvent, REDACTED_ANNOTATION } from '@kaudit/audit-schema';
import { type FieldPath, formatFieldPath, isPrefix, parseFieldPath, parseJsonPointer } from './path';
import { LAST_APPLIED_ANNOTATION, type RedactionPolicy, type RedactionRule } from './policy';

/**
 * Removes secret values from audit events before they leave the process. Pure and synchronous: the
 * input is never mutated; objects are cloned only when something in them has to go.
 *
 * Two passes over requestObject and responseObject:
 * 1. by resource: the rule matching objectRef (group, resource, subresource) removes its paths from the
 *    object, from each item of a list, each row of a Table, and from the `value` of JSON-patch
 *    operations that touch them. Shapes the rule does not understand (a string, an object of another
 *    kind) are dropped whole: failing closed costs a body, failing open leaks a credential.
 * 2. by kind: any object anywhere in the bodies whose `kind` has a rule (a Secret inside a List, a Table
 *    row, another resource's event) loses that rule's paths too.
 */
export interface RedactionResult {
  event: AuditEvent;
  /** Where something was removed, e.g. `responseObject.items[*].data`; empty when nothing was. */
  redactedPaths: string[];
}

export interface RawRedactionResult {
  raw: unknown;
  redactedPaths: string[];
  /** Why whole bodies were withheld, for the dead letter's reason; undefined when none was. */
  note: string | undefined;
}

export interface Redactor {
  (event: AuditEvent): RedactionResult;
  /** For items that failed validation (on their way to the dead-letter topic): any shape at all. */
  redactRaw(raw: unknown): RawRedactionResult;
}

interface CompiledRule {
  group: string;
  resource: string;
  subresource: string | undefined;
  kind: string | undefined;
  paths: FieldPath[];
  understoodKinds: Set<string>;
}

type Json = Record<string, unknown>;

/** Beyond this nesting an object is not inspected but dropped (fail closed). */
const MAX_DEPTH = 100;
const DROP = Symbol('drop');
/** Raw items whose resource cannot be determined: their bodies are dropped. */
const UNKNOWN_RESOURCE = Symbol('unknown resource');
type RuleMatch = CompiledRule | undefined | typeof UNKNOWN_RESOURCE;

/** Kinds every resource's request or response can take besides the resource's own kind. */
const GENERIC_KINDS = ['List', 'Status', 'DeleteOptions', 'Table', 'WatchEvent', 'PartialObjectMetadata'];

const LAST_APPLIED_PATH: FieldPath = ['metadata', 'annotations', LAST_APPLIED_ANNOTATION];

export function createRedactor(policy: RedactionPolicy): Redactor {
  const rules = policy.rules.map((rule) => compileRule(rule, policy.stripLastAppliedConfiguration));
  // Exact subresource rules first, so serviceaccounts/token beats a rule for all of serviceaccounts.
  rules.sort((a, b) => Number(b.subresource !== undefined) - Number(a.subresource !== undefined));
  const byKind = new Map<string, CompiledRule>();
  for (const rule of rules) if (rule.kind && !byKind.has(rule.kind)) byKind.set(rule.kind, rule);

  function matchRule(ref: AuditEvent['objectRef']): CompiledRule | undefined {
    if (ref?.resource === undefined) return undefined;
    const group = ref.apiGroup ?? '';
    return rules.find(
      (rule) =>
        rule.resource === ref.resource &&
        rule.group === group &&
        (rule.subresource === undefined || rule.subresource === ref.subresource),
    );
  }

  /** Redacts one body (requestObject or responseObject); returns DROP when it must go whole. */
  function redactBody(value: unknown, rule: RuleMatch, base: string, found: Set<string>): unknown {
    if (rule === UNKNOWN_RESOURCE) {
      found.add(base);
      return DROP;
    }
    // Checked before anything recursive of V8's runs on the value: structuredClone (and JSON.stringify
    // later) throw RangeError on a body nested some thousands deep, which a 100 KB request can be.
    const scan = scanBody(value, byKind, 0);
    if (scan === 'too deep') {
      found.add(base);
      return DROP;
    }
    if (rule === undefined && scan === 'clean') return value;
    const copy = typeof value === 'object' && value !== null ? structuredClone(value) : value;
    if (rule !== undefined && !redactForResource(copy, rule, base, found)) {
      found.add(base);
      return DROP;
    }
    if (!redactByKind(copy, byKind, base, [], found, 0)) {
      found.add(base);
      return DROP;
    }
    return copy;
  }

  const redact = ((event: AuditEvent): RedactionResult => {
    const patchKeys = webhookPatchKeys(event.annotations);
    if (event.requestObject === undefined && event.responseObject === undefined && patchKeys.length === 0)
      return { event, redactedPaths: [] };
    const rule = matchRule(event.objectRef);
    const found = new Set<string>();
    const out: AuditEvent = { ...event };
    for (const field of ['requestObject', 'responseObject'] as const) {
      if (event[field] === undefined) continue;
      const body = redactBody(event[field], rule, field, found);
      if (body === DROP) delete out[field];
      else out[field] = body;
    }
    const annotations = { ...event.annotations };
    // A mutating webhook's JSON patch, recorded as an annotation: for a redacted resource it can carry
    // the very values the bodies lost.
    if (rule)
      for (const key of patchKeys) {
        delete annotations[key];
        found.add(formatFieldPath('annotations', [key]));
      }
    if (found.size === 0) return { event, redactedPaths: [] };
    const redactedPaths = [...found];
    out.annotations = { ...annotations, [REDACTED_ANNOTATION]: redactedPaths.join(',') };
    return { event: out, redactedPaths };
  }) as Redactor;

  redact.redactRaw = (raw: unknown): RawRedactionResult => {
    const found = new Set<string>();
    if (typeof raw === 'string') {
      // A string item cannot be inspected field by field: it may be a whole serialized Secret.
      return {
        raw: `[string of ${raw.length} characters withheld]`,
        redactedPaths: ['(root)'],
        note: 'the item is a string and was withheld',
      };
    }
    if (!isPlainObject(raw)) {
      const body = redactBody(raw, undefined, '', found);
      if (body === DROP)
        return { raw: null, redactedPaths: [...found], note: 'the item is nested too deep to inspect' };
      return { raw: body, redactedPaths: [...found], note: undefined };
    }
    // Without a valid objectRef the resource is unknown, and kind-less bodies (a merge patch
    // {"data": {...}}) cannot be told apart from a Secret's: fail closed, the bodies go.
    const ref = raw.objectRef;
    const rule: RuleMatch = isObjectRef(ref) ? matchRule(ref) : UNKNOWN_RESOURCE;
    const out: Json = {};
    for (const [key, value] of Object.entries(raw)) {
      const body =
        key === 'requestObject' || key === 'responseObject'
          ? redactBody(value, rule, key, found)
          : redactBody(value, undefined, key, found);
      if (body !== DROP) out[key] = body;
    }
    if (rule !== undefined && isPlainObject(out.annotations)) {
      const patchKeys = Object.keys(out.annotations).filter((k) => k.startsWith(WEBHOOK_PATCH_PREFIX));
      if (patchKeys.length > 0) {
        const annotations = { ...out.annotations };
        for (const key of patchKeys) {
          delete annotations[key];
          found.add(formatFieldPath('annotations', [key]));
        }
        out.annotations = annotations;
      }
    }
    const bodies = (['requestObject', 'responseObject'] as const).filter((k) => k in raw && !(k in out));
    const note =
      bodies.length === 0
        ? undefined
        : rule === UNKNOWN_RESOURCE
          ? `${bodies.join(' and ')} withheld: no valid objectRef, so the resource and its secret fields are unknown`
          : `${bodies.join(' and ')} withheld: nested too deep or of a shape the redaction policy cannot vet`;
    // The item itself may be an object of a redacted kind (a Secret posted instead of an Event).
    const top = byKind.get(typeof raw.kind === 'string' ? raw.kind : '');
    if (!top) return { raw: out, redactedPaths: [...found], note };
    const copy = structuredClone(out);
    applyPaths(copy, top.paths, '', found);
    return { raw: copy, redactedPaths: [...found], note };
  };

  return redact;
}

function compileRule(rule: RedactionRule, stripLastApplied: boolean): CompiledRule {
  const paths = rule.paths.map(parseFieldPath);
  if (stripLastApplied && !paths.some((p) => samePath(p, LAST_APPLIED_PATH))) paths.push(LAST_APPLIED_PATH);
  const understoodKinds = new Set(GENERIC_KINDS.flatMap((k) => [k, `${k}List`]));
  if (rule.kind) {
    understoodKinds.add(rule.kind);
    understoodKinds.add(`${rule.kind}List`);
  }
  return {
    group: rule.group,
    resource: rule.resource,
    subresource: rule.subresource,
    kind: rule.kind,
    paths,
    understoodKinds,
  };
}

/** Pass 1. Mutates `body` (a private copy); false when the shape is not understood. */
function redactForResource(body: unknown, rule: CompiledRule, base: string, found: Set<string>): boolean {
  if (Array.isArray(body)) return redactJsonPatch(body, rule, base, found);
  if (!isPlainObject(body)) return false;
  const kind = body.kind;
  if (kind !== undefined && typeof kind !== 'string') return false;
  if (kind !== undefined && rule.kind !== undefined && !rule.understoodKinds.has(kind)) return false;

  if (kind === 'Table') {
    if (body.rows === undefined) return true;
    if (!Array.isArray(body.rows)) return false;
    for (const row of body.rows) {
      if (!isPlainObject(row)) return false;
      // Printer columns can show any field of a custom resource: the cells cannot be vetted.
      if ('cells' in row) {
        delete row.cells;
        found.add(`${base}.rows[*].cells`);
      }
      if (row.object === undefined) continue;
      if (!isPlainObject(row.object)) return false;
      applyPaths(row.object, rule.paths, `${base}.rows[*].object`, found);
    }
    return true;
  }
  if (kind === 'WatchEvent') {
    if (body.object === undefined) return true;
    if (!isPlainObject(body.object)) return false;
    applyPaths(body.object, rule.paths, `${base}.object`, found);
    return true;
  }
  if ('items' in body) {
    if (!Array.isArray(body.items)) return false;
    for (const item of body.items) {
      if (!isPlainObject(item)) return false;
      if (item.kind !== undefined && rule.kind !== undefined && item.kind !== rule.kind) return false;
      applyPaths(item, rule.paths, `${base}.items[*]`, found);
    }
  }
  applyPaths(body, rule.paths, base, found);
  return true;
}

/**
 * `kubectl patch --type=json`: an array of operations. An operation on a redacted path (or below it)
 * loses its value; an operation on an ancestor (e.g. `/metadata` or the root) has the paths removed
 * from its value.
 */
function redactJsonPatch(ops: unknown[], rule: CompiledRule, base: string, found: Set<string>): boolean {
  for (const [index, op] of ops.entries()) {
    if (!isPlainObject(op) || typeof op.path !== 'string') return false;
    const target = parseJsonPointer(op.path);
    if (target === undefined) return false;
    if (!('value' in op)) continue;
    const at = `${base}[${index}].value`;
    for (const path of rule.paths) {
      if (isPrefix(path, target)) {
        delete op.value;
        found.add(at);
        break;
      }
      if (isPrefix(target, path)) {
        if (isPlainObject(op.value)) applyPaths(op.value, [path.slice(target.length)], at, found);
        else {
          delete op.value;
          found.add(at);
          break;
        }
      }
    }
  }
  return true;
}

/**
 * Deletes each path from `target`. A missing field is fine; a field on the way that is not an object
 * (where an object belongs) is removed itself, because what it holds cannot be vetted.
 */
function applyPaths(target: Json, paths: readonly FieldPath[], base: string, found: Set<string>): void {
  for (const path of paths) {
    let parent: Json = target;
    for (let i = 0; i < path.length; i++) {
      const key = path[i]!;
      if (!Object.hasOwn(parent, key)) break;
      if (i === path.length - 1 || !isPlainObject(parent[key])) {
        delete parent[key];
        found.add(formatFieldPath(base, path.slice(0, i + 1)));
        break;
      }
      parent = parent[key] as Json;
    }
  }
}

type Scan = 'clean' | 'has kind' | 'too deep';

/**
 * One walk without copying, never deeper than MAX_DEPTH (so it cannot overflow the stack itself):
 * is the body nested too deep to inspect, else does it hold an object of a redacted kind?
 */
function scanBody(value: unknown, byKind: Map<string, CompiledRule>, depth: number): Scan {
  if (typeof value !== 'object' || value === null) return 'clean';
  if (depth > MAX_DEPTH) return 'too deep';
  let result: Scan = 'clean';
  const visit = (inner: Scan) => {
    if (inner !== 'clean') result = inner;
    return inner === 'too deep';
  };
  if (Array.isArray(value)) {
    for (const item of value) if (visit(scanBody(item, byKind, depth + 1))) return result;
    return result;
  }
  const kind = (value as Json).kind;
  if (typeof kind === 'string' && byKind.has(kind)) result = 'has kind';
  for (const key in value) if (visit(scanBody((value as Json)[key], byKind, depth + 1))) return result;
  return result;
}

/** Pass 2. Mutates `value`; false when nesting is too deep to inspect. */
function redactByKind(
  value: unknown,
  byKind: Map<string, CompiledRule>,
  base: string,
  at: string[],
  found: Set<string>,
  depth: number,
): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (depth > MAX_DEPTH) return false;
  if (Array.isArray(value)) {
    at.push('[*]');
    const ok = value.every((item) => redactByKind(item, byKind, base, at, found, depth + 1));
    at.pop();
    return ok;
  }
  const object = value as Json;
  const rule = typeof object.kind === 'string' ? byKind.get(object.kind) : undefined;
  if (rule) applyPaths(object, rule.paths, formatFieldPath(base, at), found);
  for (const key in object) {
    at.push(key);
    const ok = redactByKind(object[key], byKind, base, at, found, depth + 1);
    at.pop();
    if (!ok) return false;
  }
  return true;
}

/** Audit annotations in which the API server records the patch a mutating admission webhook applied. */
const WEBHOOK_PATCH_PREFIX = 'patch.webhook.admission.k8s.io/';

function webhookPatchKeys(annotations: Record<string, string> | undefined): string[] {
  if (!annotations) return [];
  const keys: string[] = [];
  for (const key in annotations) if (key.startsWith(WEBHOOK_PATCH_PREFIX)) keys.push(key);
  return keys;
}

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isObjectRef(value: unknown): value is NonNullable<AuditEvent['objectRef']> {
  if (!isPlainObject(value)) return false;
  const optionalString = (v: unknown) => v === undefined || typeof v === 'string';
  return (
    typeof value.resource === 'string' && optionalString(value.apiGroup) && optionalString(value.subresource)
  );
}

function samePath(a: FieldPath, b: FieldPath): boolean {
  return a.length === b.length && isPrefix(a, b);
}

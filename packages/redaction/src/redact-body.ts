import { type FieldPath, formatFieldPath, isPrefixFolded, parseJsonPointer } from './path';

/**
 * The two passes over one request or response body. Mutate a private copy; say false when the body
 * must go whole. Keys are matched case-insensitively (`Data`, `STRINGDATA`): what a client wrote in
 * another case may still be what a server, or a later reader, takes for the field.
 *
 * 1. by resource (`redactForResource`): the body belongs to a resource a rule protects. Its shape must be
 *    one the rule understands — the object itself, a patch of it, a list, a Table, a watch event (with or
 *    without `kind: WatchEvent`), a JSON patch — else the body is dropped.
 * 2. by kind (`redactByKind`): any object anywhere whose `kind` (any case) has a rule loses that rule's
 *    paths too, whatever the resource of the event; own `__proto__` keys are dropped everywhere (never a
 *    Kubernetes field, and a trap for every JavaScript reader downstream).
 */
export interface CompiledRule {
  group: string;
  resource: string;
  subresource: string | undefined;
  /** Lower-cased, as every kind comparison is. */
  kind: string | undefined;
  paths: FieldPath[];
  /** Lower-cased kinds a body of this resource may have besides the rule's own. */
  understoodKinds: Set<string>;
}

export type Json = Record<string, unknown>;

/** Beyond this nesting a body is not inspected but dropped (fail closed). */
export const MAX_DEPTH = 100;

/** Kinds every resource's request or response can take besides the resource's own kind. */
const GENERIC_KINDS = ['List', 'Status', 'DeleteOptions', 'Table', 'WatchEvent', 'PartialObjectMetadata'];

export function understoodKinds(kind: string | undefined): Set<string> {
  const kinds = new Set(GENERIC_KINDS.flatMap((k) => [k.toLowerCase(), `${k.toLowerCase()}list`]));
  if (kind) {
    kinds.add(kind);
    kinds.add(`${kind}list`);
  }
  return kinds;
}

export function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `kind` of an object, lower-cased; null when it has a `kind` that is not a string. */
function kindOf(object: Json): string | undefined | null {
  const kind = object.kind;
  if (kind === undefined) return undefined;
  return typeof kind === 'string' ? kind.toLowerCase() : null;
}

/** Pass 1. Mutates `body` (a private copy); false when the shape is not understood. */
export function redactForResource(
  body: unknown,
  rule: CompiledRule,
  base: string,
  found: Set<string>,
  depth = 0,
): boolean {
  if (depth > 2) return false; // a JSON patch replacing the root with a list of watch events: no.
  if (Array.isArray(body)) return redactJsonPatch(body, rule, base, found, depth);
  if (!isPlainObject(body)) return false;
  const kind = kindOf(body);
  if (kind === null) return false;
  if (kind !== undefined && rule.kind !== undefined && !rule.understoodKinds.has(kind)) return false;
  // Whatever the kind says, every container field a body of this resource can have is vetted: a kindless
  // `{type, object}` is a watch event as the watch stream writes it, a kindless `{items}` a list.
  applyPaths(body, rule.paths, base, found);
  if ('object' in body && !redactMember(body.object, rule, `${base}.object`, found)) return false;
  if ('items' in body) {
    if (!Array.isArray(body.items)) return false;
    for (const item of body.items) if (!redactMember(item, rule, `${base}.items[*]`, found)) return false;
  }
  if ('rows' in body) {
    if (!Array.isArray(body.rows)) return false;
    for (const row of body.rows) {
      if (!isPlainObject(row)) return false;
      // Printer columns can show any field of a custom resource: the cells cannot be vetted.
      for (const key of Object.keys(row))
        if (key.toLowerCase() === 'cells') {
          delete row[key];
          found.add(`${base}.rows[*].cells`);
        }
      if ('object' in row && !redactMember(row.object, rule, `${base}.rows[*].object`, found)) return false;
    }
  }
  return true;
}

/** An object inside a protected body (a list item, a watch event's object): of the rule's kind or none. */
function redactMember(value: unknown, rule: CompiledRule, base: string, found: Set<string>): boolean {
  if (value === undefined || value === null) return true;
  if (!isPlainObject(value)) return false;
  const kind = kindOf(value);
  if (kind === null) return false;
  if (kind !== undefined && rule.kind !== undefined && kind !== rule.kind && kind !== 'partialobjectmetadata')
    return false;
  applyPaths(value, rule.paths, base, found);
  return true;
}

/**
 * `kubectl patch --type=json`: an array of operations. An operation on a redacted path (or below it, in
 * any case) loses its value; one on an ancestor (e.g. `/metadata` or the root) has the paths removed
 * from its value, and a root value is vetted like a whole body.
 */
function redactJsonPatch(
  ops: unknown[],
  rule: CompiledRule,
  base: string,
  found: Set<string>,
  depth: number,
): boolean {
  for (const [index, op] of ops.entries()) {
    if (!isPlainObject(op) || typeof op.path !== 'string') return false;
    const target = parseJsonPointer(op.path);
    if (target === undefined) return false;
    for (const key of Object.keys(op))
      if (key !== 'value' && key.toLowerCase() === 'value') {
        delete op[key];
        found.add(`${base}[${index}].${key.toLowerCase()}`);
      }
    if (!('value' in op)) continue;
    const at = `${base}[${index}].value`;
    if (target.length === 0) {
      if (!redactForResource(op.value, rule, at, found, depth + 1)) {
        delete op.value;
        found.add(at);
      }
      continue;
    }
    for (const path of rule.paths) {
      if (isPrefixFolded(path, target)) {
        delete op.value;
        found.add(at);
        break;
      }
      if (isPrefixFolded(target, path)) {
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
 * Deletes each path from `target`, matching keys in any case. A missing field is fine; a field on the
 * way that is not an object (where an object belongs) is removed itself: what it holds cannot be vetted.
 */
export function applyPaths(
  target: Json,
  paths: readonly FieldPath[],
  base: string,
  found: Set<string>,
): void {
  for (const path of paths) applyPath(target, path, 0, base, found);
}

function applyPath(parent: Json, path: FieldPath, i: number, base: string, found: Set<string>): void {
  const want = path[i]!.toLowerCase();
  for (const key of Object.keys(parent)) {
    if (key.toLowerCase() !== want) continue;
    const value = parent[key];
    if (i === path.length - 1 || !isPlainObject(value)) {
      delete parent[key];
      found.add(formatFieldPath(base, [...path.slice(0, i), key]));
    } else applyPath(value, path, i + 1, base, found);
  }
}

export type Scan = 'clean' | 'dirty' | 'too deep';

/**
 * One walk without copying, never deeper than MAX_DEPTH (so it cannot overflow the stack itself): is the
 * body nested too deep to inspect, else does pass 2 have anything to do in it (an object of a protected
 * kind, a `__proto__` key)?
 */
export function scanBody(value: unknown, byKind: ReadonlyMap<string, CompiledRule>, depth = 0): Scan {
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
  if (typeof kind === 'string' && isProtectedKind(kind.toLowerCase(), byKind)) result = 'dirty';
  if (Object.hasOwn(value, '__proto__')) result = 'dirty';
  for (const key in value) if (visit(scanBody((value as Json)[key], byKind, depth + 1))) return result;
  return result;
}

/** `secret` or `secretlist` (already lower-cased) for a rule of kind Secret. */
function isProtectedKind(kind: string, byKind: ReadonlyMap<string, CompiledRule>): boolean {
  return byKind.has(kind) || (kind.endsWith('list') && byKind.has(kind.slice(0, -4)));
}

/** Pass 2. Mutates `value`; false when nesting is too deep to inspect. */
export function redactByKind(
  value: unknown,
  byKind: ReadonlyMap<string, CompiledRule>,
  base: string,
  at: string[],
  found: Set<string>,
  depth = 0,
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
  if (Object.hasOwn(object, '__proto__')) {
    Reflect.deleteProperty(object, '__proto__');
    found.add(formatFieldPath(base, [...at, '__proto__']));
  }
  const kind = typeof object.kind === 'string' ? object.kind.toLowerCase() : undefined;
  const rule = kind === undefined ? undefined : byKind.get(kind);
  if (rule) applyPaths(object, rule.paths, formatFieldPath(base, at), found);
  // A list of a protected kind (`SecretList`, any case): its items are of that kind even without one.
  const listOf = kind?.endsWith('list') ? byKind.get(kind.slice(0, -4)) : undefined;
  if (listOf && Array.isArray(object.items))
    for (const item of object.items)
      if (isPlainObject(item))
        applyPaths(item, listOf.paths, formatFieldPath(base, [...at, 'items', '[*]']), found);
  for (const key in object) {
    at.push(key);
    const ok = redactByKind(object[key], byKind, base, at, found, depth + 1);
    at.pop();
    if (!ok) return false;
  }
  return true;
}

/**
 * Field paths as written in policies/redaction.yaml: dot-separated names, with `["..."]` (a JSON string)
 * for names that hold dots or slashes, e.g. `metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]`.
 * A path is stored as its segments so no key is ever re-parsed.
 */
export type FieldPath = readonly string[];

const NAME = /^[A-Za-z0-9_$-]+/;

export function parseFieldPath(text: string): FieldPath {
  if (text.trim() === '') throw new Error('path must not be empty');
  const segments: string[] = [];
  let rest = text;
  for (;;) {
    if (rest.startsWith('[')) {
      const end = findClosingBracket(rest);
      if (end < 0) throw new Error(`unterminated ["..."] in "${text}"`);
      let key: unknown;
      try {
        key = JSON.parse(rest.slice(1, end));
      } catch {
        throw new Error(`["..."] must hold a JSON string in "${text}"`);
      }
      if (typeof key !== 'string' || key === '')
        throw new Error(`["..."] must hold a non-empty string in "${text}"`);
      segments.push(key);
      rest = rest.slice(end + 1);
    } else {
      const match = NAME.exec(rest);
      if (!match) throw new Error(`expected a field name at "${rest}" in "${text}"`);
      segments.push(match[0]);
      rest = rest.slice(match[0].length);
    }
    if (rest === '') return segments;
    if (rest.startsWith('.')) rest = rest.slice(1);
    else if (!rest.startsWith('[')) throw new Error(`unexpected "${rest}" in "${text}"`);
  }
}

function findClosingBracket(text: string): number {
  // `[` then a JSON string then `]`: skip over the string so a `]` inside it does not end the segment.
  if (text[1] !== '"') return -1;
  for (let i = 2; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return text[i + 1] === ']' ? i + 1 : -1;
  }
  return -1;
}

/** The reverse of parseFieldPath, prefixed with where the object sits in the event. */
export function formatFieldPath(base: string, segments: readonly string[]): string {
  let out = base;
  for (const segment of segments) {
    if (segment === '[*]' || /^\[\d+\]$/.test(segment)) out += segment;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** RFC 6901 JSON pointer to segments; undefined when it is not a pointer (so the caller fails closed). */
export function parseJsonPointer(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** True when `prefix` is `path` or one of its ancestors. */
export function isPrefix(prefix: readonly string[], path: readonly string[]): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== path[i]) return false;
  return true;
}

/** isPrefix, comparing segments case-insensitively (`/Data/pw` is under `data`). */
export function isPrefixFolded(prefix: readonly string[], path: readonly string[]): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++)
    if (prefix[i]!.toLowerCase() !== path[i]!.toLowerCase()) return false;
  return true;
}

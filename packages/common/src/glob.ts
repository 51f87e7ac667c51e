/**
 * Globs, one semantics for detection allow-lists and alert routing (docs/adr/0005): `*` any run of
 * characters (none included), `?` exactly one character, everything else literal; anchored at both
 * ends; case-sensitive.
 *
 * Matched without a regular expression: a pattern with several stars (`system:serviceaccount:*:*`) as a
 * backtracking regex costs O(n^stars) on a long value that almost matches (a 300,000-character username
 * stalled the event loop). Here the pattern is split at its stars; the first part must be a prefix, the
 * last a suffix, and each middle part is taken at its first occurrence, which leaves the most room for
 * the rest, so greedy is exact and nothing is ever retried: O(pattern x value) at worst.
 */
export interface Glob {
  readonly pattern: string;
  test(value: string): boolean;
}

export function compileGlob(pattern: string): Glob {
  const parts = pattern.split('*');
  return { pattern, test: (value) => globMatches(parts, value) };
}

/** Any of the patterns; undefined never matches; an empty list matches nothing. */
export function globMatcher(patterns: readonly string[]): (value: string | undefined) => boolean {
  if (patterns.length === 0) return () => false;
  const compiled = patterns.map((p) => p.split('*'));
  return (value) => value !== undefined && compiled.some((parts) => globMatches(parts, value));
}

/** `part` (which has no star) matches `value` at `at`, `?` standing for any one character. */
function matchesAt(part: string, value: string, at: number): boolean {
  if (at < 0 || at + part.length > value.length) return false;
  for (let i = 0; i < part.length; i++) {
    const ch = part.charCodeAt(i);
    if (ch !== 63 /* ? */ && ch !== value.charCodeAt(at + i)) return false;
  }
  return true;
}

/** The first position at or after `from` where `part` matches, or -1. */
function indexOfPart(part: string, value: string, from: number): number {
  if (!part.includes('?')) return value.indexOf(part, from);
  for (let at = from; at + part.length <= value.length; at++) if (matchesAt(part, value, at)) return at;
  return -1;
}

function globMatches(parts: readonly string[], value: string): boolean {
  const first = parts[0]!;
  if (parts.length === 1) return value.length === first.length && matchesAt(first, value, 0);
  const last = parts[parts.length - 1]!;
  if (value.length < first.length + last.length) return false;
  if (!matchesAt(first, value, 0) || !matchesAt(last, value, value.length - last.length)) return false;
  let at = first.length;
  const end = value.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i]!;
    const found = indexOfPart(part, value, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

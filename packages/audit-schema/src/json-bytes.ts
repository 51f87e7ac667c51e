/** The bytes of JSON the item splitter (item-splitter.ts) looks for, and the string scanner's fast path. */

export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const OPEN_OBJECT = 0x7b;
export const CLOSE_OBJECT = 0x7d;
export const OPEN_ARRAY = 0x5b;
export const CLOSE_ARRAY = 0x5d;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const NEWLINE = 0x0a;
export const BODY_KEYS = new Set(['requestObject', 'responseObject']);

/** The first backslash (or, for JSON lines, newline) in chunk[from, to), else -1. */
export function firstOf(chunk: Buffer, from: number, to: number, newlines: boolean): number {
  if (from >= to) return -1;
  const part = chunk.subarray(from, to);
  const backslash = part.indexOf(BACKSLASH);
  const newline = newlines ? part.indexOf(NEWLINE) : -1;
  if (backslash < 0 && newline < 0) return -1;
  const first = backslash < 0 ? newline : newline < 0 ? backslash : Math.min(backslash, newline);
  return from + first;
}

/** Strings up to this long are scanned byte by byte: a native indexOf costs more than it saves there. */
const SHORT_STRING = 48;

/**
 * Where the string content starting at `from` stops: the first quote or backslash (or, for JSON lines,
 * newline) at or after it, else chunk.length. Most strings of an audit event are short (a verb, a name,
 * a timestamp): those are scanned here; a long one (an annotation, a body) with indexOf.
 */
export function stringStop(chunk: Buffer, from: number, newlines: boolean): number {
  const short = Math.min(chunk.length, from + SHORT_STRING);
  for (let i = from; i < short; i++) {
    const b = chunk[i]!;
    if (b === QUOTE || b === BACKSLASH || (b === NEWLINE && newlines)) return i;
  }
  if (short === chunk.length) return short;
  let end = chunk.indexOf(QUOTE, short);
  if (end < 0) end = chunk.length;
  const stop = firstOf(chunk, short, end, newlines);
  return stop < 0 ? end : stop;
}

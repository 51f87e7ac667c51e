/**
 * Where a JSON.parse failed, without quoting the input: V8's messages carry an excerpt of the text
 * (`Unexpected token 'M', "MK3…" is not valid JSON`) and the offending character, either of which can be
 * part of a secret. Only the position survives: `at position 12`, `unexpected end of input`, or
 * `syntax error`. Callers write it as `not valid JSON (<this>)`.
 */
export function safeJsonError(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  if (message.includes('Unexpected end of JSON input')) return 'unexpected end of input';
  const position = /at position (\d+)/.exec(message)?.[1];
  return position === undefined ? 'syntax error' : `at position ${position}`;
}

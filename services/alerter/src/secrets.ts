import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import type { SecretRef } from './routing';

/**
 * A credential (Slack webhook URL, HMAC key, HEC token). It prints as [redacted] however it is logged,
 * stringified or inspected; only `reveal()` gives the value, at the one place it goes on the wire.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}

export interface SecretSource {
  env: Record<string, string | undefined>;
  readFile?: (path: string) => string;
}

/** Resolves a reference; the problem message names the variable or file, never a value. */
export function resolveSecret(ref: SecretRef, source: SecretSource): { secret?: Secret; problem?: string } {
  if ('env' in ref) {
    const value = source.env[ref.env]?.trim();
    return value ? { secret: new Secret(value) } : { problem: `environment variable ${ref.env} is not set` };
  }
  try {
    const value = (source.readFile ?? ((p: string) => readFileSync(p, 'utf8')))(ref.file).trim();
    return value ? { secret: new Secret(value) } : { problem: `secret file ${ref.file} is empty` };
  } catch (error) {
    return {
      problem: `secret file ${ref.file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    };
  }
}

/**
 * Replaces every secret value (and its URL-encoded form) in a text that may leave the process: an
 * error message, a response body quoted in a dead letter. Belt and braces: our own messages never
 * include them, but a remote side may echo a URL back.
 */
export function scrubSecrets(text: string, secrets: Secret[]): string {
  let out = text;
  for (const secret of secrets) {
    const value = secret.reveal();
    if (value.length < 4) continue;
    for (const form of new Set([value, encodeURIComponent(value)])) out = out.split(form).join('[redacted]');
  }
  return out;
}

import { DURATION_EXAMPLES, parseDurationMs } from '@kaudit/common';

/** Kept for callers of `@kaudit/service-kit`: the one grammar lives in @kaudit/common. */
export { parseDurationMs };

import { z } from 'zod';

/** Thrown by loadConfig; its message names every bad or missing variable at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Variables renamed to carry their unit: the new name an operator should set -> the old name, which
 * stays the schema key (and what the code reads), so every deployment that sets the old one keeps
 * working. `KAFKA_STARTUP_TIMEOUT_MS` is here for every service.
 */
export type EnvRenames = Readonly<Record<string, string>>;

export const SHARED_ENV_RENAMES: EnvRenames = { KAFKA_STARTUP_TIMEOUT_MS: 'KAFKA_STARTUP_TIMEOUT' };

const isSet = (value: string | undefined) => value !== undefined && value.trim() !== '';

/**
 * The environment as the schema reads it: a new name's value under the old name. Setting both to
 * different values is a problem, named under both.
 */
function applyRenames(
  env: Record<string, string | undefined>,
  renames: EnvRenames,
): { env: Record<string, string | undefined>; names: Map<string, string>; problems: string[] } {
  const out = { ...env };
  const names = new Map<string, string>();
  const problems: string[] = [];
  for (const [name, old] of Object.entries(renames)) {
    if (!isSet(env[name])) continue;
    if (isSet(env[old]) && env[old]!.trim() !== env[name]!.trim()) {
      problems.push(`${name}: set together with its old name ${old} to another value; set only ${name}`);
      continue;
    }
    out[old] = env[name];
    names.set(old, name);
  }
  return { env: out, names, problems };
}

/**
 * Parses environment variables with a zod object schema whose keys ARE the variable names, so every
 * problem is reported under the name an operator sets (the new name when a renamed variable was set
 * under it). Never throws: callers add the problems of their own cross-variable and file checks, so
 * one ConfigError names everything wrong at once.
 */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  rawEnv: Record<string, string | undefined> = process.env,
  renames: EnvRenames = {},
): { value: z.infer<S> | undefined; problems: string[] } {
  const {
    env,
    names,
    problems: renameProblems,
  } = applyRenames(rawEnv, { ...SHARED_ENV_RENAMES, ...renames });
  const result = schema.safeParse(env);
  if (result.success && renameProblems.length === 0) return { value: result.data, problems: [] };
  return {
    value: undefined,
    problems: [
      ...renameProblems,
      ...(result.error?.issues ?? []).map((issue) => {
        const key = issue.path.length > 0 ? issue.path.join('.') : '(environment)';
        const name = names.get(key) ?? key;
        const value = issue.path.length === 1 ? env[String(issue.path[0])] : undefined;
        return `${name}: ${issue.message}${value !== undefined ? ` (got ${JSON.stringify(value)})` : ''}`;
      }),
    ],
  };
}

/** parseConfig that throws a ConfigError naming every problem; the only place a service reads process.env. */
export function loadConfig<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined> = process.env,
  renames: EnvRenames = {},
): z.infer<S> {
  const { value, problems } = parseConfig(schema, env, renames);
  if (problems.length > 0) throw new ConfigError(problems);
  return value as z.infer<S>;
}

const blankToUndefined = (value: unknown) =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

/** "true"/"false"/"1"/"0"/"yes"/"no", anything else is an error. */
export function envBoolean(defaultValue: boolean) {
  return z.preprocess(
    blankToUndefined,
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
      .default(defaultValue ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1' || v === 'yes'),
  );
}

export function envInt(defaultValue: number, options: { min?: number; max?: number } = {}) {
  let number = z.coerce.number({ message: 'must be a whole number' }).int('must be a whole number');
  if (options.min !== undefined) number = number.min(options.min, `must be at least ${options.min}`);
  if (options.max !== undefined) number = number.max(options.max, `must be at most ${options.max}`);
  return z.preprocess(blankToUndefined, number.default(defaultValue));
}

/** Comma-separated list, blanks dropped. */
export function envList(defaultValue: string[]) {
  return z.preprocess(
    blankToUndefined,
    z
      .string()
      .default(defaultValue.join(','))
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0),
      ),
  );
}

export function envDurationMs(defaultValue: number) {
  return z.preprocess(
    blankToUndefined,
    z
      .union([z.number(), z.string()])
      .default(defaultValue)
      .transform((v, ctx) => {
        const ms = typeof v === 'number' ? v : parseDurationMs(v);
        if (ms === undefined) {
          ctx.addIssue({ code: 'custom', message: `must be a duration such as ${DURATION_EXAMPLES}` });
          return z.NEVER;
        }
        return ms;
      }),
  );
}

/** Optional string: blank counts as unset. */
export function envOptional() {
  return z.preprocess(blankToUndefined, z.string().optional());
}

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AppError } from '@kaudit/common';
import { z } from 'zod';

/**
 * policies/elasticsearch under the working directory (the Docker images run from /app with
 * /app/policies), else the one of this checkout.
 */
export function defaultPoliciesDir(): string {
  const candidates = [
    join(process.cwd(), 'policies/elasticsearch'),
    join(__dirname, '../../../policies/elasticsearch'),
  ];
  return candidates.find((dir) => existsSync(join(dir, 'index-templates'))) ?? candidates[0]!;
}

export const DEFAULT_RETENTION = '365d';
export const ILM_POLICY_NAME = 'kaudit-logs';

export interface ResourceOptions {
  /** Data stream lifecycle `data_retention` (and the ILM delete phase's min_age), e.g. "365d". */
  retention?: string;
  numberOfReplicas?: number;
  /** Use the ILM policy instead of the data stream lifecycle. */
  ilm?: boolean;
}

export interface NamedResource {
  name: string;
  body: Record<string, unknown>;
}

export interface Resources {
  componentTemplates: NamedResource[];
  indexTemplates: NamedResource[];
  ilmPolicies: NamedResource[];
}

/** Elasticsearch time units a data_retention / min_age accepts. */
const retentionPattern = /^[1-9]\d*(d|h|m|s|ms)$/;

export function retentionProblem(retention: string): string | undefined {
  return retentionPattern.test(retention)
    ? undefined
    : 'must be a positive whole number with a unit d, h, m, s or ms (e.g. 365d)';
}

const ComponentTemplateSchema = z.looseObject({
  template: z.looseObject({
    settings: z.record(z.string(), z.unknown()).optional(),
    mappings: z.record(z.string(), z.unknown()).optional(),
  }),
});

const IndexTemplateSchema = z.looseObject({
  index_patterns: z.array(z.string()).min(1),
  data_stream: z.object({}).loose(),
  priority: z.number().int().min(101, 'must be above the built-in logs template (100)'),
  composed_of: z.array(z.string()),
  template: z.looseObject({}).optional(),
});

const IlmPolicySchema = z.looseObject({
  policy: z.looseObject({ phases: z.record(z.string(), z.unknown()) }),
});

/**
 * Reads the templates and policies of `dir` (component-templates/, index-templates/, ilm-policies/;
 * each resource is named after its file) and applies the operator's options: replicas, retention,
 * and ILM instead of the data stream lifecycle. Throws naming the file and the problem.
 */
export function loadResources(dir: string = defaultPoliciesDir(), options: ResourceOptions = {}): Resources {
  const retention = options.retention ?? DEFAULT_RETENTION;
  const problem = retentionProblem(retention);
  if (problem) throw new AppError('KAUDIT_ERR_CONFIG', `retention ${JSON.stringify(retention)} ${problem}`);
  if (
    options.numberOfReplicas !== undefined &&
    !(Number.isInteger(options.numberOfReplicas) && options.numberOfReplicas >= 0)
  ) {
    throw new AppError(
      'KAUDIT_ERR_CONFIG',
      `number of replicas must be a whole number >= 0 (got ${options.numberOfReplicas})`,
    );
  }
  const componentTemplates = readDir(join(dir, 'component-templates'), ComponentTemplateSchema).map(
    (resource) => withReplicas(resource, options.numberOfReplicas),
  );
  const indexTemplates = readDir(join(dir, 'index-templates'), IndexTemplateSchema).map((resource) =>
    withRetention(resource, retention, options.ilm === true),
  );
  const ilmPolicies = readDir(join(dir, 'ilm-policies'), IlmPolicySchema).map((resource) =>
    withDeleteAfter(resource, retention),
  );
  if (indexTemplates.length === 0)
    throw new AppError('KAUDIT_ERR_POLICY', `no index templates in ${join(dir, 'index-templates')}`);
  return { componentTemplates, indexTemplates, ilmPolicies };
}

function readDir(dir: string, schema: z.ZodType): NamedResource[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((file) => file.endsWith('.json'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return files.sort().map((file) => {
    const path = join(dir, file);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new AppError('KAUDIT_ERR_POLICY', `${path}: not valid JSON (${(error as Error).message})`);
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      throw new AppError('KAUDIT_ERR_POLICY', `${path}: ${issues.join('; ')}`);
    }
    return { name: basename(file, '.json'), body: parsed.data as Record<string, unknown> };
  });
}

type Json = Record<string, unknown>;
const clone = <T>(value: T): T => structuredClone(value);

function withReplicas(resource: NamedResource, replicas: number | undefined): NamedResource {
  const body = clone(resource.body) as { template: { settings?: Json } };
  const index = body.template.settings?.index as Json | undefined;
  if (replicas === undefined || index?.number_of_replicas === undefined) return resource;
  index.number_of_replicas = replicas;
  return { name: resource.name, body: body as Json };
}

function withRetention(resource: NamedResource, retention: string, ilm: boolean): NamedResource {
  const body = clone(resource.body) as { template?: Json };
  const template: Json = body.template ?? {};
  body.template = template;
  if (ilm) {
    // One retention mechanism at a time: ILM owns rollover and deletion when chosen.
    delete template.lifecycle;
    const settings = (template.settings as Json | undefined) ?? {};
    const index = (settings.index as Json | undefined) ?? {};
    index.lifecycle = { name: ILM_POLICY_NAME, prefer_ilm: true };
    settings.index = index;
    template.settings = settings;
  } else {
    template.lifecycle = { ...((template.lifecycle as Json | undefined) ?? {}), data_retention: retention };
  }
  return { name: resource.name, body: body as Json };
}

function withDeleteAfter(resource: NamedResource, retention: string): NamedResource {
  const body = clone(resource.body) as { policy: { phases: Record<string, Json> } };
  const { phases } = body.policy;
  if (phases.delete) phases.delete.min_age = retention;
  // Elasticsearch wants phases in time order: a retention shorter than the warm phase's start skips it.
  const warmAt = typeof phases.warm?.min_age === 'string' ? durationMs(phases.warm.min_age) : undefined;
  if (warmAt !== undefined && warmAt >= (durationMs(retention) ?? Number.POSITIVE_INFINITY))
    delete phases.warm;
  return { name: resource.name, body: body as Json };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function durationMs(text: string): number | undefined {
  const match = /^(\d+)(d|h|m|s|ms)$/.exec(text);
  return match ? Number(match[1]) * UNIT_MS[match[2]!]! : undefined;
}

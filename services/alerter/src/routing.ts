import {
  type Finding,
  identityKinds,
  ruleIds,
  type Severity,
  severities,
  severityRank,
} from '@kaudit/audit-schema';
import { compileGlob, DURATION_EXAMPLES, parseDurationMs } from '@kaudit/common';
import { AppError } from '@kaudit/service-kit';
import { IANAZone } from 'luxon';
import { parseDocument } from 'yaml';
import { z } from 'zod';

/** Where a destination secret comes from: never written into routing.yaml itself. */
const SecretRefSchema = z.union([
  z
    .object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name') })
    .strict(),
  z.object({ file: z.string().min(1, 'must be a file path') }).strict(),
]);
export type SecretRef = z.infer<typeof SecretRefSchema>;

const DurationSchema = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? value : parseDurationMs(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `must be a duration such as ${DURATION_EXAMPLES}` });
    return z.NEVER;
  }
  return ms;
});

const TimezoneSchema = z
  .string()
  .refine((zone) => IANAZone.isValidZone(zone), 'must be an IANA time zone such as Europe/Berlin');

const RetrySchema = z
  .object({
    /** Attempts after the first one; unlimited unless given (maxElapsed still bounds them). */
    retries: z.number().int().min(0).max(10_000).optional(),
    /** No retry starts after this long since the first attempt: the delivery dead-letters instead. */
    maxElapsed: DurationSchema.refine((ms) => ms >= 1000, 'must be at least 1s').optional(),
    initialDelay: DurationSchema.optional(),
    maxDelay: DurationSchema.optional(),
    /** A Retry-After longer than this is not waited for: the delivery dead-letters instead. */
    maxRetryAfter: DurationSchema.optional(),
  })
  .strict();

const DeliveryOptionsShape = {
  /** Per HTTP attempt. */
  timeout: DurationSchema.optional(),
  retry: RetrySchema.optional(),
  /** Deliveries in flight at once to this destination. */
  concurrency: z.number().int().min(1).max(64).optional(),
};

const HttpUrlSchema = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' });

const SlackDestinationSchema = z
  .object({
    type: z.literal('slack'),
    /** The incoming-webhook URL is a credential: only by reference. */
    urlFrom: SecretRefSchema,
    /** Time zone of the times shown in messages; defaults to the top-level timezone. */
    timezone: TimezoneSchema.optional(),
    ...DeliveryOptionsShape,
  })
  .strict();

const WebhookDestinationSchema = z
  .object({
    type: z.literal('webhook'),
    url: HttpUrlSchema.optional(),
    urlFrom: SecretRefSchema.optional(),
    hmacKeyFrom: SecretRefSchema,
    /** Extra, non-secret request headers. */
    headers: z.record(z.string(), z.string()).optional(),
    ...DeliveryOptionsShape,
  })
  .strict();

const SplunkHecDestinationSchema = z
  .object({
    type: z.literal('splunk-hec'),
    /** e.g. https://splunk.example.com:8088/services/collector/event */
    url: HttpUrlSchema.optional(),
    urlFrom: SecretRefSchema.optional(),
    tokenFrom: SecretRefSchema,
    index: z.string().min(1).optional(),
    source: z.string().min(1).optional(),
    sourcetype: z.string().min(1).optional(),
    ...DeliveryOptionsShape,
  })
  .strict();

const DestinationSchema = z.discriminatedUnion('type', [
  SlackDestinationSchema,
  WebhookDestinationSchema,
  SplunkHecDestinationSchema,
]);
export type DestinationSpec = z.infer<typeof DestinationSchema>;

const PatternListSchema = z.array(z.string().min(1)).min(1);

const RouteSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be lowercase letters, digits, . _ -'),
    /** Every condition given must hold (AND); within one list any entry may match (OR). */
    match: z
      .object({
        minSeverity: z.enum(severities).optional(),
        rules: z.array(z.enum(ruleIds)).min(1).optional(),
        clusters: PatternListSchema.optional(),
        namespaces: PatternListSchema.optional(),
        identities: PatternListSchema.optional(),
        identityKinds: z.array(z.enum(identityKinds)).min(1).optional(),
      })
      .strict()
      .default({}),
    destinations: z.array(z.string().min(1)).min(1),
    throttle: z
      .object({
        /** Alerts per identity per window delivered one by one; the rest fold into one digest. */
        maxAlerts: z.number().int().min(1),
        window: DurationSchema.refine((ms) => ms >= 1000, 'must be at least 1s'),
      })
      .strict()
      .optional(),
  })
  .strict();

export const RoutingPolicySchema = z
  .object({
    /** Time zone of the times shown in messages (IANA). */
    timezone: TimezoneSchema.default('UTC'),
    defaults: z.object(DeliveryOptionsShape).strict().default({}),
    destinations: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/), DestinationSchema),
    routes: z.array(RouteSchema).min(1),
  })
  .strict()
  .superRefine((policy, ctx) => {
    for (const issue of referenceIssues(policy)) ctx.addIssue({ code: 'custom', ...issue });
  });

interface PathIssue {
  path: PropertyKey[];
  message: string;
}

/**
 * Checks across keys (route names unique, destinations of routes exist, url xor urlFrom). Works on
 * the raw document too, so these problems are reported even when another key failed validation.
 */
function referenceIssues(raw: unknown): PathIssue[] {
  const issues: PathIssue[] = [];
  const doc = (raw ?? {}) as { destinations?: unknown; routes?: unknown };
  const destinations =
    doc.destinations && typeof doc.destinations === 'object'
      ? (doc.destinations as Record<string, unknown>)
      : {};
  const known = Object.keys(destinations);
  const seen = new Set<string>();
  (Array.isArray(doc.routes) ? doc.routes : []).forEach((route: unknown, i) => {
    const r = (route ?? {}) as { name?: unknown; destinations?: unknown };
    if (typeof r.name === 'string') {
      if (seen.has(r.name))
        issues.push({ path: ['routes', i, 'name'], message: `duplicate route "${r.name}"` });
      seen.add(r.name);
    }
    (Array.isArray(r.destinations) ? r.destinations : []).forEach((name: unknown, j) => {
      if (typeof name === 'string' && !known.includes(name)) {
        issues.push({
          path: ['routes', i, 'destinations', j],
          message: `unknown destination "${name}" (known: ${known.join(', ') || 'none'})`,
        });
      }
    });
  });
  for (const [name, value] of Object.entries(destinations)) {
    const dest = (value ?? {}) as { type?: unknown; url?: unknown; urlFrom?: unknown };
    if (
      (dest.type === 'webhook' || dest.type === 'splunk-hec') &&
      (dest.url === undefined) === (dest.urlFrom === undefined)
    ) {
      issues.push({ path: ['destinations', name], message: 'needs exactly one of url or urlFrom' });
    }
  }
  return issues;
}

export type RoutingPolicy = z.infer<typeof RoutingPolicySchema>;
export type Route = RoutingPolicy['routes'][number];

/** `routes[1].match.minSeverity` — the way an operator reads the YAML. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(top level)' : out;
}

/**
 * Parses and validates routing.yaml. Every problem is reported at once, each under the path of the key
 * it concerns, in one AppError(KAUDIT_ERR_POLICY).
 */
export function parseRoutingPolicy(text: string, source = 'routing.yaml'): RoutingPolicy {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new AppError(
      'KAUDIT_ERR_POLICY',
      `${source} is not valid YAML:\n${doc.errors.map((e) => `  - ${e.message}`).join('\n')}`,
    );
  }
  const raw: unknown = doc.toJS();
  const result = RoutingPolicySchema.safeParse(raw);
  if (!result.success) {
    const problems = [...result.error.issues, ...referenceIssues(raw)].map(
      (issue) => `  - ${formatPath(issue.path)}: ${issue.message}`,
    );
    throw new AppError('KAUDIT_ERR_POLICY', `${source} is invalid:\n${[...new Set(problems)].join('\n')}`);
  }
  return result.data;
}

export interface CompiledRoute {
  route: Route;
  matches(finding: Finding): boolean;
}

/** Globs as in detection allow-lists (@kaudit/common): `*` any run of characters, `?` one character. */
function anyGlob(patterns: string[] | undefined): ((value: string) => boolean) | undefined {
  if (!patterns) return undefined;
  const globs = patterns.map(compileGlob);
  return (value) => globs.some((glob) => glob.test(value));
}

function compileRoute(route: Route): CompiledRoute {
  const { match } = route;
  const minRank = severityRank[match.minSeverity ?? 'low'];
  const rules = match.rules ? new Set<string>(match.rules) : undefined;
  const kinds = match.identityKinds ? new Set<string>(match.identityKinds) : undefined;
  const cluster = anyGlob(match.clusters);
  const namespace = anyGlob(match.namespaces);
  const identity = anyGlob(match.identities);
  return {
    route,
    matches(finding) {
      if (severityRank[finding.severity as Severity] < minRank) return false;
      if (rules && !rules.has(finding.rule)) return false;
      if (kinds && !kinds.has(finding.identity.kind)) return false;
      if (cluster && !cluster(finding.cluster)) return false;
      if (identity && !identity(finding.identity.username)) return false;
      if (namespace) {
        // A cluster-wide read (an object without namespace, or no object at all) touches every
        // namespace, so it matches every namespace pattern: filtering must fail towards alerting.
        const namespaces = finding.objects.map((o) => o.namespace);
        if (namespaces.length > 0 && namespaces.every((ns) => ns !== undefined && !namespace(ns)))
          return false;
      }
      return true;
    },
  };
}

/** The routes a finding matches, in file order. Every matching route applies. */
export function createRouter(policy: RoutingPolicy): { match(finding: Finding): Route[] } {
  const compiled = policy.routes.map(compileRoute);
  return { match: (finding) => compiled.filter((c) => c.matches(finding)).map((c) => c.route) };
}

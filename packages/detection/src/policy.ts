import { formatIssues, type RuleId, severities } from '@kaudit/audit-schema';
import { globMatcher, parseDurationMs } from '@kaudit/common';
import ipaddr from 'ipaddr.js';
import { IANAZone } from 'luxon';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * The detection policy (policies/detection.yaml). Every object is strict, so a misspelt key is an error
 * naming its path instead of a setting silently ignored; durations are parsed to milliseconds here, so
 * the engine only ever sees numbers.
 */

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDurationMs(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `must be a duration such as "30s", "5m", "7d" (got ${value})` });
    return z.NEVER;
  }
  return ms;
});

const clockTime = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'must be HH:MM between 00:00 and 24:00')
  .transform((text) => Number(text.slice(0, 2)) * 60 + Number(text.slice(3, 5)));

export const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

const cidr = z.string().refine((text) => ipaddr.isValidCIDR(text) || ipaddr.isValid(text), {
  message: 'must be an IP address or a CIDR such as 10.0.0.0/8',
});

const severity = z.enum(severities);
const positiveInt = z.number().int().positive();

/** Glob patterns: `*` matches any run of characters, e.g. `system:serviceaccount:kube-system:*`. */
const allowList = z
  .strictObject({
    identities: z.array(z.string().min(1)).default([]),
    namespaces: z.array(z.string().min(1)).default([]),
  })
  .prefault({});

const rule = <T extends z.ZodRawShape>(severityDefault: (typeof severities)[number], shape: T) =>
  z
    .strictObject({
      enabled: z.boolean().default(true),
      severity: severity.default(severityDefault),
      allowList,
      ...shape,
    })
    // Generic over `shape`, so TypeScript cannot see that {} is a valid input; every key has a default.
    .prefault({} as never);

const rules = z
  .strictObject({
    'secret-off-hours': rule('medium', {
      /** Severity for a non-human identity active at an hour it never was before. */
      learnedHoursSeverity: severity.default('medium'),
      /** An hour this close to a learned one is not unusual. */
      toleranceHours: z.number().int().min(0).max(11).default(1),
    }),
    'secret-new-source-ip': rule('medium', {
      /** A service-account or node credential used from outside network.clusterCIDRs: token theft. */
      outsideClusterSeverity: severity.default('high'),
      /**
       * A person's new address inside a network they already use (network.familiarPrefix around a known
       * address) or inside network.organizationCIDRs, with no other signal (off-hours, a new client).
       */
      familiarNetworkSeverity: severity.default('low'),
    }),
    'secret-new-service-account': rule('medium', {
      /** Cluster-wide list/watch, or a read outside the account's own namespace. */
      escalatedSeverity: severity.default('high'),
      /** Its first read comes from outside network.clusterCIDRs: a minted or stolen token used from outside. */
      outsideClusterSeverity: severity.default('high'),
    }),
    'secret-enumeration': rule('high', {
      window: duration.prefault('5m'),
      distinctSecrets: positiveInt.default(20),
      distinctNamespaces: positiveInt.default(5),
      /** Also report the first cluster-wide list/watch of secrets by an identity that never did one. */
      firstClusterWideList: z.boolean().default(true),
      firstClusterWideListSeverity: severity.default('medium'),
    }),
    'secret-anonymous-access': rule('critical', {
      deniedSeverity: severity.default('medium'),
    }),
    'secret-access-denied-burst': rule('medium', {
      window: duration.prefault('5m'),
      threshold: positiveInt.default(5),
    }),
    'secret-unusual-user-agent': rule('low', {}),
    'secret-new-namespace': rule('low', {
      /** New namespaces are counted over this sliding window; the count sets the severity. */
      window: duration.prefault('1h'),
      /** Weighted new namespaces in the window from which the finding is medium, and high. */
      mediumAt: positiveInt.default(2),
      highAt: positiveInt.default(4),
      /** A service account's new namespace outside its own counts this many times. */
      serviceAccountWeight: positiveInt.default(2),
    }),
    'secret-canary-read': rule('critical', {
      /** Decoy Secrets: `name` may be a glob (`*`), e.g. { namespace: payments, name: "legacy-*" }. */
      canaries: z
        .array(z.strictObject({ namespace: z.string().min(1), name: z.string().min(1) }))
        .default([]),
      /** A list or watch of the canary's namespace (or of every namespace) returns it too. */
      lists: z.boolean().default(true),
      listSeverity: severity.default('high'),
      /** A refused read of a canary: someone looked for it. */
      deniedSeverity: severity.default('medium'),
    }),
    'credential-minted': rule('medium', {
      /** Identities whose job is to mint credentials (kubelets mint their pods' tokens). Globs. */
      expectedMinters: z
        .array(z.string().min(1))
        .default(['system:node:*', 'system:kube-controller-manager', 'system:apiserver']),
      /**
       * Identities (globs) whose job is to approve node CSRs: the controller manager's csrapproving
       * controller (as itself, or with --use-service-account-credentials as its account). A node
       * certificate (CN system:node:*) approved by anyone else is high.
       */
      expectedApprovers: z
        .array(z.string().min(1))
        .default([
          'system:kube-controller-manager',
          'system:serviceaccount:kube-system:certificate-controller',
        ]),
      /** Service accounts (globs) whose token minted by another identity is high. */
      sensitiveServiceAccounts: z.array(z.string().min(1)).default(['system:serviceaccount:kube-system:*']),
      /** A token for an account that was just granted privilege, a self-approved CSR, a legacy token Secret. */
      highSeverity: severity.default('high'),
      /** How long a created CSR is remembered for a self-approval (and a grant for a minted token). */
      window: duration.prefault('1h'),
    }),
    'privilege-escalation-then-secrets': rule('high', {
      /** A privilege step and the Secret read after it must fall within this window. */
      window: duration.prefault('1h'),
      /** Bindings to these roles (when the body is logged) are privilege; other roles are not. */
      powerfulRoles: z.array(z.string().min(1)).default(['cluster-admin', 'admin', 'system:masters']),
      /** Control-plane identities whose RBAC writes are their job (role aggregation, bootstrap). Globs. */
      ignoreActors: z
        .array(z.string().min(1))
        .default([
          'system:apiserver',
          'system:kube-controller-manager',
          'system:kube-scheduler',
          'system:node:*',
          'system:serviceaccount:kube-system:clusterrole-aggregation-controller',
        ]),
      /** Steps remembered per cluster (oldest dropped first). */
      maxSteps: positiveInt.default(64),
    }),
    'token-provenance': rule('high', {
      /** A Secret-based (legacy, never-expiring) service-account token reading Secrets. */
      legacyTokenSeverity: severity.default('medium'),
    }),
    'anonymous-access': rule('high', {
      /** Refused anonymous requests within `window` from which they are a finding. */
      deniedSeverity: severity.default('medium'),
      deniedThreshold: positiveInt.default(10),
      window: duration.prefault('5m'),
      /** Paths anonymous clients may read by design (system:public-info-viewer). Globs. */
      ignorePaths: z
        .array(z.string().min(1))
        .default(['/healthz*', '/livez*', '/readyz*', '/version', '/version/*']),
    }),
  })
  .prefault({});

const retained = (max: number, retention: string) =>
  z.strictObject({ max: positiveInt.default(max), retention: duration.prefault(retention) }).prefault({});

const timezone = z.string().refine((zone) => IANAZone.isValidZone(zone), {
  message: 'must be an IANA time zone such as Europe/Berlin',
});

const businessHours = z
  .strictObject({
    days: z.array(z.enum(weekdays)).min(1).default(['mon', 'tue', 'wed', 'thu', 'fri']),
    /** start > end: the hours span midnight (a night shift 22:00-06:00 belongs to the day it starts). */
    start: clockTime.prefault('08:00'),
    end: clockTime.prefault('19:00'),
    /** Local dates (YYYY-MM-DD in `timezone`) that count as outside business hours all day. */
    holidays: z.array(z.iso.date({ message: 'must be a date YYYY-MM-DD' })).default([]),
  })
  .refine((hours) => hours.start !== hours.end, {
    message: 'start and end must differ (start after end spans midnight)',
    path: ['end'],
  })
  .refine((hours) => hours.start < 24 * 60, { message: 'must be before 24:00', path: ['start'] });

/**
 * `clusters: { <glob>: overlay }`: what differs per cluster of a fleet. Every overlay whose glob matches
 * the cluster name applies, in the order written: timezone and businessHours replace the global ones,
 * network keys given replace theirs, allowList entries are added to the global allow-list.
 */
const clusterOverlay = z.strictObject({
  timezone: timezone.optional(),
  businessHours: businessHours.optional(),
  network: z
    .strictObject({
      clusterCIDRs: z.array(cidr).optional(),
      trustedProxies: z.array(cidr).optional(),
      organizationCIDRs: z.array(cidr).optional(),
      knownAddressMinAge: duration.optional(),
    })
    .optional(),
  allowList: z
    .strictObject({
      identities: z.array(z.string().min(1)).default([]),
      namespaces: z.array(z.string().min(1)).default([]),
    })
    .optional(),
});

export const PolicySchema = z
  .strictObject({
    timezone: timezone.default('UTC'),
    businessHours: businessHours.prefault({}),
    learningPeriod: duration.prefault('7d'),
    eventTime: z
      .strictObject({
        /** How far behind the newest event an event may arrive and still be processed in order: fits the
         * API server's --audit-webhook-batch-max-wait (30s by default; ADR 0010). */
        allowedLateness: duration.prefault('30s'),
        /** How long a request is remembered to drop its other stages (long watches end late). */
        dedupRetention: duration.prefault('2h'),
      })
      .prefault({}),
    network: z
      .strictObject({
        clusterCIDRs: z.array(cidr).default([]),
        trustedProxies: z.array(cidr).default([]),
        /**
         * For secret reads, an address counts as known only once it has been seen for the identity this
         * long (or a secret read from it was already judged): otherwise stolen credentials could make
         * their own address "known" with a harmless request just before reading Secrets.
         */
        knownAddressMinAge: duration.prefault('1h'),
        /** Offices and VPNs: a person's new address inside them is low (secret-new-source-ip). */
        organizationCIDRs: z.array(cidr).default([]),
        /** The network a known address belongs to: a new address inside it is not a new place. */
        familiarPrefix: z
          .strictObject({
            ipv4: z.number().int().min(0).max(32).default(24),
            ipv6: z.number().int().min(0).max(128).default(64),
          })
          .prefault({}),
      })
      .prefault({}),
    baseline: z
      .strictObject({
        /** An identity unseen this long is forgotten entirely. */
        identityRetention: duration.prefault('90d'),
        /** Learned hours judge a non-human identity only once its baseline is this old. */
        matureAfter: duration.prefault('7d'),
        sourceIPs: retained(64, '30d'),
        /** Hours of the day active (learned hours); at most 24, each forgotten when unused this long. */
        hours: z.strictObject({ retention: duration.prefault('30d') }).prefault({}),
        userAgents: retained(16, '30d'),
        namespaces: retained(64, '90d'),
      })
      .prefault({}),
    allowList,
    grouping: z
      .strictObject({
        /** Findings of one rule and identity inside one window (aligned to the epoch) are one finding. */
        window: duration.prefault('10m'),
        /** An open finding is reported again (same id, next revision) at most this often as evidence joins. */
        updateInterval: duration.prefault('1m'),
        maxAuditIDs: positiveInt.default(200),
        maxObjects: positiveInt.default(100),
      })
      .prefault({}),
    rules,
    clusters: z.record(z.string().min(1), clusterOverlay).default({}),
  })
  .refine((policy) => policy.grouping.window > 0, {
    message: 'must be positive',
    path: ['grouping', 'window'],
  });

export type Policy = z.output<typeof PolicySchema>;
export type PolicyInput = z.input<typeof PolicySchema>;
export type RulePolicies = Policy['rules'];
export type RulePolicy<R extends RuleId> = RulePolicies[R];

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

/**
 * The policy one cluster is judged by: the global policy with every matching overlay of `clusters`
 * applied (see clusterOverlay). The same object for every cluster no overlay matches.
 */
export function policyForCluster(policy: Policy, cluster: string): Policy {
  const overlays = Object.entries(policy.clusters).filter(([glob]) => globMatcher([glob])(cluster));
  if (overlays.length === 0) return policy;
  const resolved: Policy = {
    ...policy,
    network: { ...policy.network },
    allowList: {
      identities: [...policy.allowList.identities],
      namespaces: [...policy.allowList.namespaces],
    },
  };
  for (const [, overlay] of overlays) {
    if (overlay.timezone) resolved.timezone = overlay.timezone;
    if (overlay.businessHours) resolved.businessHours = overlay.businessHours;
    for (const [key, value] of Object.entries(overlay.network ?? {}))
      if (value !== undefined) (resolved.network as Record<string, unknown>)[key] = value;
    resolved.allowList.identities.push(...(overlay.allowList?.identities ?? []));
    resolved.allowList.namespaces.push(...(overlay.allowList?.namespaces ?? []));
  }
  return resolved;
}

/** Validates an already-parsed policy object; the error lists every problem as `path: message`. */
export function parsePolicy(input: unknown): Policy {
  const result = PolicySchema.safeParse(input ?? {});
  if (!result.success) throw new PolicyError(`invalid detection policy: ${formatIssues(result.error)}`);
  return result.data;
}

/** Parses the YAML text of policies/detection.yaml. */
export function loadPolicyText(yamlText: string): Policy {
  let document: unknown;
  try {
    document = parseYaml(yamlText);
  } catch (error) {
    throw new PolicyError(`invalid detection policy: not valid YAML (${(error as Error).message})`);
  }
  return parsePolicy(document);
}

/** The policy with every default, for tests and for the CLI without --policy. */
export function defaultPolicy(overrides: PolicyInput = {}): Policy {
  return parsePolicy(overrides);
}

import { formatIssues } from '@kaudit/audit-schema';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseFieldPath } from './path';

export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

const fieldPath = z.string().superRefine((text, ctx) => {
  try {
    parseFieldPath(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `invalid path: ${(error as Error).message}` });
  }
});

const dnsName = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export const RedactionRuleSchema = z.strictObject({
  /** API group; "" (or omitted) is the core group. */
  group: z
    .string()
    .default('')
    .refine(
      (g) => g === '' || dnsName.test(g),
      'must be "" (core) or a DNS name such as apps or example.com',
    ),
  /** Plural resource name as in objectRef.resource, e.g. secrets. */
  resource: z.string().regex(dnsName, 'must be a lower-case plural resource name such as secrets'),
  /** When set, only that subresource matches; when omitted, the resource and all its subresources. */
  subresource: z.string().regex(dnsName, 'must be a lower-case subresource name such as token').optional(),
  /**
   * Kind of the resource's objects (e.g. Secret). With it, an object of an unexpected kind in the
   * event is dropped whole (fail closed), and objects of this kind are redacted wherever they appear
   * (in Lists, Tables, or the events of other resources).
   */
  kind: z
    .string()
    .regex(/^[A-Z][A-Za-z0-9]*$/, 'must be a Kind such as Secret')
    .optional(),
  /** Fields removed from requestObject and responseObject (and from each item of a list). */
  paths: z.array(fieldPath).min(1, 'must list at least one path'),
});
export type RedactionRule = z.infer<typeof RedactionRuleSchema>;

export const RedactionPolicySchema = z.strictObject({
  apiVersion: z.literal('kaudit.dev/v1', { message: 'must be kaudit.dev/v1' }),
  kind: z.literal('RedactionPolicy', { message: 'must be RedactionPolicy' }),
  /**
   * Also drop the last-applied-configuration annotation of every matched object: `kubectl apply`
   * copies the whole manifest, secret values included, into it.
   */
  stripLastAppliedConfiguration: z.boolean().default(true),
  rules: z.array(RedactionRuleSchema),
});
export type RedactionPolicy = z.infer<typeof RedactionPolicySchema>;
export type RedactionPolicyInput = z.input<typeof RedactionPolicySchema>;

/** Built in: what policies/redaction.yaml ships with (a test keeps the two equal). */
export const DEFAULT_REDACTION_POLICY: RedactionPolicy = {
  apiVersion: 'kaudit.dev/v1',
  kind: 'RedactionPolicy',
  stripLastAppliedConfiguration: true,
  rules: [
    {
      group: '',
      resource: 'secrets',
      kind: 'Secret',
      paths: ['data', 'stringData', `metadata.annotations["${LAST_APPLIED_ANNOTATION}"]`],
    },
    {
      group: '',
      resource: 'serviceaccounts',
      subresource: 'token',
      kind: 'TokenRequest',
      paths: ['status.token'],
    },
    { group: 'authentication.k8s.io', resource: 'tokenreviews', kind: 'TokenReview', paths: ['spec.token'] },
  ],
};

export class RedactionPolicyError extends Error {
  override name = 'RedactionPolicyError';
}

/** Validates a policy already parsed from YAML/JSON; the error names the file and every bad path. */
export function parseRedactionPolicy(value: unknown, source = 'redaction policy'): RedactionPolicy {
  const result = RedactionPolicySchema.safeParse(value);
  if (!result.success) throw new RedactionPolicyError(`${source}: ${formatIssues(result.error)}`);
  const seen = new Set<string>();
  for (const [index, rule] of result.data.rules.entries()) {
    const key = `${rule.group}/${rule.resource}/${rule.subresource ?? ''}`;
    if (seen.has(key))
      throw new RedactionPolicyError(`${source}: rules.${index}: a rule for ${key} already exists`);
    seen.add(key);
  }
  return result.data;
}

export function parseRedactionPolicyYaml(text: string, source = 'redaction policy'): RedactionPolicy {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    throw new RedactionPolicyError(`${source}: not valid YAML (${(error as Error).message})`);
  }
  return parseRedactionPolicy(value, source);
}

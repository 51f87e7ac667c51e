import type { Severity } from '@kaudit/audit-schema';
import { globMatcher } from '@kaudit/common';
import type { Policy } from '../policy';
import { describeRead, type Rule } from './types';

type Canary = Policy['rules']['secret-canary-read']['canaries'][number];

const matchers = new WeakMap<
  readonly Canary[],
  Array<{ namespace: string; name: (n: string) => boolean; text: string }>
>();

function compiled(canaries: readonly Canary[]) {
  let list = matchers.get(canaries);
  if (!list) {
    list = canaries.map((c) => ({
      namespace: c.namespace,
      name: globMatcher([c.name]),
      text: `${c.namespace}/${c.name}`,
    }));
    matchers.set(canaries, list);
  }
  return list;
}

/**
 * secret-canary-read: Secrets nobody has a reason to read (decoys named in the policy). Any read is news:
 * no learning period, no global allow-list — only identities named in the rule's own allowList (a
 * controller that watches every Secret, such as cert-manager). A get of the canary is `severity`; a list
 * or watch of its namespace or of all namespaces returns it too, at listSeverity (with `lists`).
 */
export const canaryRead: Rule = {
  id: 'secret-canary-read',
  ownAllowListOnly: true,
  evaluate({ policy, observation }) {
    const rule = policy.rules['secret-canary-read'];
    if (rule.canaries.length === 0) return undefined;
    const { identity, secret } = observation;
    if (secret.outcome === 'failed' || secret.outcome === 'unauthenticated') return undefined;
    const hit = compiled(rule.canaries).find((canary) =>
      secret.name
        ? canary.namespace === secret.namespace && canary.name(secret.name)
        : rule.lists && (secret.namespace === undefined || secret.namespace === canary.namespace),
    );
    if (!hit) return undefined;
    const denied = secret.outcome === 'denied';
    const listed = secret.name === undefined;
    const severity: Severity = denied ? rule.deniedSeverity : listed ? rule.listSeverity : rule.severity;
    const how = listed
      ? `${observation.verb === 'watch' ? 'watched' : 'listed'} ${describeRead(observation)}, which returns the canary ${hit.text}`
      : `read the canary ${describeRead(observation)}`;
    return {
      rule: 'secret-canary-read',
      severity,
      summary: denied
        ? `${identity.username} tried to ${observation.verb} ${describeRead(observation)}, a canary (${hit.text}), and was refused`
        : `${identity.username} ${how}: no one has a reason to read it`,
      details: { canaries: [hit.text], listed, denied },
    };
  },
};

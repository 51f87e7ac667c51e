import { formatDuration } from '@kaudit/common';
import type { Rule } from './types';

/**
 * secret-enumeration: one identity reads many distinct secrets or namespaces within a sliding window
 * (a list or watch of a namespace counts as every secret in it), or lists secrets cluster-wide when it
 * never did. Sliding in event time over one identity's requests, which are processed in time order, so
 * the outcome does not depend on arrival order.
 */
export const enumeration: Rule = {
  id: 'secret-enumeration',
  evaluate({ policy, observation, state, learning, groupOpen }) {
    const rule = policy.rules['secret-enumeration'];
    const { identity, secret } = observation;
    if (secret.outcome === 'failed') return undefined;
    if (groupOpen) return { rule: 'secret-enumeration', severity: 'low', summary: '' };
    const since = observation.t - rule.window;
    const names = new Set<string>();
    const namespaces = new Set<string>();
    const add = (entry: string) => {
      names.add(entry);
      namespaces.add(entry.slice(0, entry.indexOf('/')));
    };
    for (const [t, entry] of state.recentReads) if (t > since) add(entry);
    add(`${secret.namespace ?? '*'}/${secret.name ?? '*'}`);
    if (names.size >= rule.distinctSecrets || namespaces.size >= rule.distinctNamespaces) {
      return {
        rule: 'secret-enumeration',
        severity: rule.severity,
        summary: `${identity.username} read ${names.size} distinct secrets across ${namespaces.size} namespaces within ${formatDuration(rule.window)} (thresholds ${rule.distinctSecrets} secrets or ${rule.distinctNamespaces} namespaces)`,
        details: {
          distinctSecrets: names.size,
          distinctNamespaces: namespaces.size,
          window: formatDuration(rule.window),
        },
      };
    }
    const clusterWideList = secret.clusterWide && observation.verb !== 'get';
    if (
      rule.firstClusterWideList &&
      clusterWideList &&
      secret.outcome === 'allowed' &&
      !state.clusterWideReads &&
      !learning
    ) {
      return {
        rule: 'secret-enumeration',
        severity: rule.firstClusterWideListSeverity,
        summary: `${identity.username} ${observation.verb === 'watch' ? 'watched' : 'listed'} secrets in all namespaces, which it never did before`,
        details: { firstClusterWideList: true },
      };
    }
    return undefined;
  },
};

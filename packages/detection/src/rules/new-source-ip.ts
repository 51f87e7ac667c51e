import { listSome, type Rule } from './types';

/**
 * secret-new-source-ip: an identity reads secrets from an address never seen for it. Service accounts and
 * nodes hop between pod and node addresses all the time, so for them an address inside
 * network.clusterCIDRs is churn, not news; their token used from outside those ranges is token theft.
 */
export const newSourceIp: Rule = {
  id: 'secret-new-source-ip',
  evaluate({ policy, observation, state, learning, clusterCIDRs }) {
    const rule = policy.rules['secret-new-source-ip'];
    const { identity, secret, sourceIP } = observation;
    if (learning || secret.outcome !== 'allowed' || !sourceIP) return undefined;
    if (identity.kind === 'anonymous') return undefined;
    const known = Object.keys(state.ips);
    // Without anything learned there is nothing to compare with (a new service account has its own rule).
    if (known.length === 0 || state.ips[sourceIP] !== undefined) return undefined;
    const inCluster = identity.kind === 'serviceaccount' || identity.kind === 'node';
    const insideCIDRs = clusterCIDRs.has(sourceIP);
    if (inCluster && insideCIDRs) return undefined;
    const stolenToken = inCluster && clusterCIDRs.size > 0;
    const recent = known.sort((a, b) => state.ips[b]! - state.ips[a]! || a.localeCompare(b));
    return {
      rule: 'secret-new-source-ip',
      severity: stolenToken ? rule.outsideClusterSeverity : rule.severity,
      summary: stolenToken
        ? `${identity.username} (a ${identity.kind} credential) read secrets from ${sourceIP}, outside the cluster networks ${policy.network.clusterCIDRs.join(', ')}: possible token theft; it was only seen from ${listSome(recent)}`
        : `${identity.username} read secrets from ${sourceIP}, an address never seen for it; known addresses: ${listSome(recent)}`,
      details: { newIPs: [sourceIP], knownIPs: recent.slice(0, 20), outsideClusterCIDRs: stolenToken },
    };
  },
};

import { severityRank } from '@kaudit/audit-schema';
import { describeRead, type Rule } from './types';

/**
 * secret-new-service-account: a service account that never read a secret does, after the learning
 * period. A cluster-wide list/watch or a read outside its own namespace is worse: that is what a
 * compromised workload with a broad RoleBinding does first. A first read from outside
 * network.clusterCIDRs is a token used off-cluster (minted by an intruder, or stolen): the finding says
 * so and secret-new-source-ip does not repeat it when there is no known address to compare with.
 */
export const newServiceAccount: Rule = {
  id: 'secret-new-service-account',
  evaluate({ policy, observation, state, learning, groupOpen, clusterCIDRs }) {
    const rule = policy.rules['secret-new-service-account'];
    const { identity, secret, sourceIP } = observation;
    if (identity.kind !== 'serviceaccount' || secret.outcome !== 'allowed') return undefined;
    const escalated =
      (secret.clusterWide && observation.verb !== 'get') ||
      (secret.namespace !== undefined && secret.namespace !== identity.namespace);
    const outside = sourceIP !== undefined && clusterCIDRs.size > 0 && !clusterCIDRs.has(sourceIP);
    let severity = escalated ? rule.escalatedSeverity : rule.severity;
    if (outside && severityRank[rule.outsideClusterSeverity] > severityRank[severity])
      severity = rule.outsideClusterSeverity;
    const why = escalated
      ? secret.clusterWide
        ? ', cluster-wide'
        : `, outside its own namespace ${identity.namespace}`
      : '';
    const where = outside
      ? `, from ${sourceIP} outside the cluster networks ${policy.network.clusterCIDRs.join(', ')} (possible token theft)`
      : '';
    const summary = `Service account ${identity.username} read ${describeRead(observation)} (${observation.verb})${why}${where}; it had never read a secret before`;
    const mitre = outside ? ['T1528'] : undefined;
    if (groupOpen) return { rule: 'secret-new-service-account', severity, summary, ...(mitre && { mitre }) };
    if (learning || state.secretReads > 0) return undefined;
    return {
      rule: 'secret-new-service-account',
      severity,
      summary,
      details: { escalated, outsideClusterCIDRs: outside },
      ...(mitre && { mitre }),
    };
  },
};

import { describeRead, type Rule } from './types';

/**
 * secret-new-service-account: a service account that never read a secret does, after the learning
 * period. A cluster-wide list/watch or a read outside its own namespace is worse: that is what a
 * compromised workload with a broad RoleBinding does first.
 */
export const newServiceAccount: Rule = {
  id: 'secret-new-service-account',
  evaluate({ policy, observation, state, learning, groupOpen }) {
    const rule = policy.rules['secret-new-service-account'];
    const { identity, secret } = observation;
    if (identity.kind !== 'serviceaccount' || secret.outcome !== 'allowed') return undefined;
    const escalated =
      (secret.clusterWide && observation.verb !== 'get') ||
      (secret.namespace !== undefined && secret.namespace !== identity.namespace);
    const severity = escalated ? rule.escalatedSeverity : rule.severity;
    const why = escalated
      ? secret.clusterWide
        ? ', cluster-wide'
        : `, outside its own namespace ${identity.namespace}`
      : '';
    const summary = `Service account ${identity.username} read ${describeRead(observation)} (${observation.verb})${why}; it had never read a secret before`;
    if (groupOpen) return { rule: 'secret-new-service-account', severity, summary };
    if (learning || state.secretReads > 0) return undefined;
    return { rule: 'secret-new-service-account', severity, summary, details: { escalated } };
  },
};

import { agentProduct } from '../baseline';
import { listSome, type Rule } from './types';

/**
 * secret-unusual-user-agent: secrets read with a client never seen for this identity. Compared by
 * product ("kubectl", "curl", "python-requests"), not full string, so version upgrades are not news.
 */
export const unusualUserAgent: Rule = {
  id: 'secret-unusual-user-agent',
  evaluate({ policy, observation, state, learning }) {
    const rule = policy.rules['secret-unusual-user-agent'];
    const { identity, secret, userAgent } = observation;
    if (learning || secret.outcome !== 'allowed' || !userAgent || identity.kind === 'anonymous')
      return undefined;
    const known = Object.keys(state.agents);
    const product = agentProduct(userAgent);
    if (known.length === 0 || state.agents[product] !== undefined) return undefined;
    return {
      rule: 'secret-unusual-user-agent',
      severity: rule.severity,
      summary: `${identity.username} read secrets with ${product} ("${userAgent}"), a client never seen for it; known clients: ${listSome(known.sort())}`,
      details: { newAgents: [product], knownAgents: known.slice(0, 20) },
    };
  },
};

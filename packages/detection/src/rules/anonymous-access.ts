import { describeRead, type Rule } from './types';

/** secret-anonymous-access: an anonymous or unauthenticated identity touches secrets, allowed or denied. */
export const anonymousAccess: Rule = {
  id: 'secret-anonymous-access',
  evaluate({ policy, observation }) {
    const rule = policy.rules['secret-anonymous-access'];
    const { identity, secret } = observation;
    if (identity.kind !== 'anonymous') return undefined;
    const allowed = secret.outcome === 'allowed';
    return {
      rule: 'secret-anonymous-access',
      severity: allowed ? rule.severity : rule.deniedSeverity,
      summary: allowed
        ? `Anonymous request (${identity.username}) was ALLOWED to ${observation.verb} ${describeRead(observation)}: anonymous auth can read secrets`
        : `Anonymous request (${identity.username}) tried to ${observation.verb} ${describeRead(observation)} and was refused (${observation.code ?? 'no status'})`,
      details: { allowed },
    };
  },
};

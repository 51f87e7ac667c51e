import { chainBefore } from '../chain';
import { describeRead, type Rule } from './types';

/**
 * privilege-escalation-then-secrets (correlation): within the window, privilege is gained — a binding
 * to a powerful role, a role that grants secrets / `*` / escalate, bind or impersonate (when the body is
 * logged; at Metadata level any binding or role written) — by the reader itself, by the identity that
 * impersonates it or minted its token, or through the binding that authorizes this read; and then
 * Secrets are read. One finding per reader and window that tells the chain in order, with every step's
 * auditID before the reads' (chain.ts holds the steps).
 */
export const escalationThenSecrets: Rule = {
  id: 'privilege-escalation-then-secrets',
  evaluate({ policy, observation, cluster }) {
    const rule = policy.rules['privilege-escalation-then-secrets'];
    const { identity, secret } = observation;
    if (secret.outcome !== 'allowed') return undefined;
    const chain = chainBefore(cluster, observation, policy);
    if (!chain) return undefined;
    const told = chain.map((step) => `${step.actor} ${step.text} at ${new Date(step.t).toISOString()}`);
    const { authorizedBy, authorizedRole } = observation.facts ?? {};
    const through = authorizedBy ? ` (allowed by ${authorizedBy} of ${authorizedRole})` : '';
    return {
      rule: 'privilege-escalation-then-secrets',
      severity: rule.severity,
      summary: `${told.join('; then ')}; then ${identity.username}${identity.impersonator ? ` (impersonated by ${identity.impersonator})` : ''} read ${describeRead(observation)}${through} at ${new Date(observation.t).toISOString()}`,
      details: {
        steps: chain.map(
          (step) => `${new Date(step.t).toISOString()} ${step.actor} ${step.text} (auditID ${step.auditID})`,
        ),
        stepActors: [...new Set(chain.map((step) => step.actor))],
      },
      auditIDs: chain.map((step) => step.auditID),
    };
  },
};

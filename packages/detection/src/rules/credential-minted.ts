import { globMatcher } from '@kaudit/common';
import type { Policy } from '../policy';
import type { RequestRule } from './types';

const cache = new WeakMap<
  Policy['rules']['credential-minted'],
  { minter: (u: string) => boolean; sensitive: (u: string) => boolean }
>();

function matchers(rule: Policy['rules']['credential-minted']) {
  let m = cache.get(rule);
  if (!m) {
    m = { minter: globMatcher(rule.expectedMinters), sensitive: globMatcher(rule.sensitiveServiceAccounts) };
    cache.set(rule, m);
  }
  return m;
}

/**
 * credential-minted: a credential made for someone else. A TokenRequest (`create serviceaccounts/token`)
 * for a service account other than the requester's own — high for kube-system (sensitiveServiceAccounts)
 * or for an account that was just granted privilege (a chain step naming it); a CertificateSigningRequest
 * approved by the identity that created it (or whose logged body says it asked for it); a legacy
 * service-account token Secret created (its type is logged at Request level). Kubelets and the
 * controller manager mint tokens as their job (expectedMinters).
 */
export const credentialMinted: RequestRule = {
  id: 'credential-minted',
  evaluate({ policy, observation, state, cluster }) {
    const rule = policy.rules['credential-minted'];
    const { identity, facts, verb } = observation;
    if (!facts?.resource || (observation.code !== undefined && observation.code >= 400)) return undefined;
    const { minter, sensitive } = matchers(rule);
    if (minter(identity.username)) return undefined;
    if (facts.resource === 'serviceaccounts' && facts.subresource === 'token' && verb === 'create') {
      const account = `system:serviceaccount:${facts.namespace}:${facts.name}`;
      if (account === identity.username) return undefined;
      const since = observation.t - rule.window;
      const granted = (cluster.steps ?? []).find(
        (step) => step.kind === 'privilege' && step.t >= since && step.targets.includes(account),
      );
      const powerful = sensitive(account) || granted !== undefined;
      const why = granted
        ? `, which ${granted.actor} just made powerful (${granted.text})`
        : sensitive(account)
          ? ', a sensitive account (sensitiveServiceAccounts)'
          : '';
      return {
        rule: 'credential-minted',
        severity: powerful ? rule.highSeverity : rule.severity,
        summary: `${identity.username} minted a token (TokenRequest) for ${account}${why}: whoever holds it acts as that account`,
        details: { minted: [`token for ${account}`] },
      };
    }
    if (facts.resource === 'certificatesigningrequests' && facts.subresource === 'approval' && facts.name) {
      const selfCreated =
        (state.csrs?.[facts.name] ?? Number.NEGATIVE_INFINITY) >= observation.t - rule.window;
      const selfRequested = facts.csrRequester === identity.username;
      if (!selfCreated && !selfRequested) return undefined;
      return {
        rule: 'credential-minted',
        severity: rule.highSeverity,
        summary: `${identity.username} approved the CertificateSigningRequest ${facts.name} that it created itself: a client certificate issued without a second party`,
        details: { minted: [`certificate ${facts.name}`] },
        mitre: ['T1649'],
      };
    }
    if (
      facts.resource === 'secrets' &&
      verb === 'create' &&
      facts.secretType === 'kubernetes.io/service-account-token'
    ) {
      return {
        rule: 'credential-minted',
        severity: rule.highSeverity,
        summary: `${identity.username} created ${facts.namespace}/${facts.name}, a legacy service-account token Secret: a token that never expires`,
        details: { minted: [`legacy token secret ${facts.namespace}/${facts.name}`] },
      };
    }
    return undefined;
  },
};

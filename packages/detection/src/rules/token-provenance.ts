import type { RequestRule } from './types';

/**
 * token-provenance: a service-account token used where it does not belong, judged on what the API
 * server records in user.extra: one credential id (the token's JTI) used from two addresses; a
 * pod-bound token used from an address its pod never had (the pod's first address is its own: pods
 * keep one address for life); a legacy Secret-based token (annotation authentication.k8s.io/legacy-token)
 * reading Secrets. This sees token theft inside the cluster networks, where the CIDR check of
 * secret-new-source-ip cannot.
 */
export const tokenProvenance: RequestRule = {
  id: 'token-provenance',
  evaluate({ policy, observation, state }) {
    const rule = policy.rules['token-provenance'];
    const { identity, facts, sourceIP, secret } = observation;
    if (!facts || identity.kind !== 'serviceaccount') return undefined;
    const ok = observation.code === undefined || observation.code < 400;
    if (sourceIP && ok) {
      const byCredential = facts.credentialId ? state.tokens?.[facts.credentialId] : undefined;
      if (byCredential && byCredential[0] !== sourceIP) {
        return {
          rule: 'token-provenance',
          severity: rule.severity,
          summary: `${identity.username}'s token ${facts.credentialId} was used from ${sourceIP}; it was first used from ${byCredential[0]}: one token, two places (a copied token)`,
          details: {
            signals: ['credential-two-addresses'],
            credentialId: facts.credentialId,
            addresses: [byCredential[0], sourceIP],
          },
        };
      }
      const byPod = facts.pod ? state.tokens?.[facts.pod] : undefined;
      if (byPod && byPod[0] !== sourceIP) {
        const pod = facts.podName ? `${facts.podName} (${facts.pod})` : facts.pod;
        return {
          rule: 'token-provenance',
          severity: rule.severity,
          summary: `${identity.username}'s token bound to pod ${pod}${facts.node ? ` on ${facts.node}` : ''} was used from ${sourceIP}, an address that pod never had (it used ${byPod[0]})`,
          details: { signals: ['pod-address'], pod, addresses: [byPod[0], sourceIP] },
        };
      }
    }
    if (facts.legacyToken && secret?.outcome === 'allowed') {
      return {
        rule: 'token-provenance',
        severity: rule.legacyTokenSeverity,
        summary: `${identity.username} read Secrets with a legacy token (Secret ${facts.legacyToken}), which never expires and is not bound to a pod`,
        details: { signals: ['legacy-token'], legacyTokens: [facts.legacyToken] },
      };
    }
    return undefined;
  },
};

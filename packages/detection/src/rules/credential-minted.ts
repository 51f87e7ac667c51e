import { globMatcher } from '@kaudit/common';
import type { Policy } from '../policy';
import type { RequestRule } from './types';

const cache = new WeakMap<
  Policy['rules']['credential-minted'],
  { minter: (u: string) => boolean; sensitive: (u: string) => boolean; approver: (u: string) => boolean }
>();

function matchers(rule: Policy['rules']['credential-minted']) {
  let m = cache.get(rule);
  if (!m) {
    m = {
      minter: globMatcher(rule.expectedMinters),
      sensitive: globMatcher(rule.sensitiveServiceAccounts),
      approver: globMatcher(rule.expectedApprovers),
    };
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
    const { minter, sensitive, approver } = matchers(rule);
    if (facts.resource === 'certificatesigningrequests' && facts.subresource === 'approval' && facts.name) {
      if (facts.csrDecision === 'Denied') return undefined;
      return csrApproval(observation, rule, approver, state.csrs?.[facts.name]);
    }
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

/**
 * A CSR approval (`update certificatesigningrequests/approval`, not denied): high when the approver
 * created the request itself (a certificate without a second party), when the certificate would be in
 * `system:masters` (cluster-admin that no RBAC change revokes), or when it is a node's (CN
 * system:node:…) and the approver is not one whose job that is (expectedApprovers). The subject is read
 * from the request's body (Request level and above); at Metadata level only self-approval is seen.
 */
function csrApproval(
  observation: Parameters<RequestRule['evaluate']>[0]['observation'],
  rule: Policy['rules']['credential-minted'],
  approver: (u: string) => boolean,
  createdAt: number | undefined,
): ReturnType<RequestRule['evaluate']> {
  const { identity, facts } = observation;
  const name = facts!.name!;
  const subject = facts!.csrSubject;
  const why: string[] = [];
  if (
    (createdAt ?? Number.NEGATIVE_INFINITY) >= observation.t - rule.window ||
    facts!.csrRequester === identity.username
  )
    why.push('that it created itself: a client certificate issued without a second party');
  if (subject?.organizations.includes('system:masters'))
    why.push(
      `for ${subject.commonName ?? 'a certificate'} in group system:masters: cluster-admin that no RBAC change can revoke`,
    );
  if (subject?.commonName?.startsWith('system:node:') && !approver(identity.username))
    why.push(
      `for the node credential ${subject.commonName}, which only the controller manager approves (expectedApprovers)`,
    );
  if (why.length === 0) return undefined;
  const subjectText = subject
    ? ` (CN=${subject.commonName ?? ''}${subject.organizations.map((o) => `, O=${o}`).join('')})`
    : '';
  return {
    rule: 'credential-minted',
    severity: rule.highSeverity,
    summary: `${identity.username} approved the CertificateSigningRequest ${name} ${why.join('; and ')}`,
    details: { minted: [`certificate ${name}${subjectText}`] },
    mitre: ['T1649'],
  };
}

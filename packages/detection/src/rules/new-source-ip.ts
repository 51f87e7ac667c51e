import { agentProduct, isKnownAddress } from '../baseline';
import { addressSet, isHuman, sameNetwork } from '../identity';
import type { Policy } from '../policy';
import { listSome, type Rule, roughDuration } from './types';

/**
 * secret-new-source-ip: an identity reads secrets from an address not known for it. Known means seen for
 * it at least network.knownAddressMinAge before, or already used for a secret read: an intruder with
 * stolen credentials cannot make their address known with a harmless request just before the first read.
 *
 * Service accounts and nodes hop between pod and node addresses all the time, so for them an address
 * inside network.clusterCIDRs is churn, not news; their token used from outside those ranges is token
 * theft, reported even without any known address to compare with (a token minted and used at once), except
 * when secret-new-service-account reports that same first read: it then names the address itself, so the
 * analyst gets one finding that says everything new, not two that say the same.
 */
export const newSourceIp: Rule = {
  id: 'secret-new-source-ip',
  evaluate({ policy, observation, state, learning, clusterCIDRs, active, businessHours, local }) {
    const rule = policy.rules['secret-new-source-ip'];
    const { identity, secret, sourceIP, t } = observation;
    if (learning || secret.outcome !== 'allowed' || !sourceIP) return undefined;
    if (identity.kind === 'anonymous' || isKnownAddress(state, sourceIP, t)) return undefined;
    // Control-plane components (system:kube-controller-manager, system:kube-scheduler, system:apiserver,
    // other system: users) run on nodes: a replaced control-plane node has a new address, not news.
    const inCluster =
      identity.kind === 'serviceaccount' || identity.kind === 'node' || identity.kind === 'system';
    if (inCluster && clusterCIDRs.has(sourceIP)) return undefined;
    const stolenToken = inCluster && clusterCIDRs.size > 0;
    const known = Object.keys(state.ips).filter((ip) => isKnownAddress(state, ip, t));
    if (known.length === 0) {
      // Without anything learned a human or unconfined identity has nothing to compare with.
      if (!stolenToken) return undefined;
      const firstSecretRead = identity.kind === 'serviceaccount' && state.secretReads === 0;
      if (firstSecretRead && active('secret-new-service-account')) return undefined;
    }
    const recent = known.sort((a, b) => state.ips[b]! - state.ips[a]! || a.localeCompare(b));
    const sinceKnownFrom = state.ipKnownFrom[sourceIP];
    // Seen before, but only in the last knownAddressMinAge and never for a secret read.
    const recentlySeen =
      sinceKnownFrom !== undefined ? t - (sinceKnownFrom - policy.network.knownAddressMinAge) : undefined;
    const seenNote =
      recentlySeen === undefined
        ? undefined
        : `first seen for it only ${roughDuration(recentlySeen)} before, in requests that were not secret reads`;
    const summary = stolenToken
      ? `${identity.username} (a ${identity.kind} credential) read secrets from ${sourceIP}, outside the cluster networks ${policy.network.clusterCIDRs.join(', ')}: possible token theft; ${recent.length > 0 ? `it was only seen from ${listSome(recent)}` : 'no address was known for it before'}${seenNote ? ` (${sourceIP} was ${seenNote})` : ''}`
      : `${identity.username} read secrets from ${sourceIP}, ${seenNote ? `an address ${seenNote}` : 'an address never seen for it'}; known addresses: ${listSome(recent)}`;
    const details: Record<string, unknown> = {
      newIPs: [sourceIP],
      knownIPs: recent.slice(0, 20),
      outsideClusterCIDRs: stolenToken,
    };
    if (recentlySeen !== undefined) details.firstSeenBeforeMs = recentlySeen;
    if (!stolenToken && isHuman(identity.kind)) {
      const familiar = familiarNetwork(policy, sourceIP, recent);
      const otherSignals: string[] = [];
      if (!businessHours.contains(local)) otherSignals.push('outside business hours');
      const agents = Object.keys(state.agents);
      if (
        observation.userAgent &&
        agents.length > 0 &&
        state.agents[agentProduct(observation.userAgent)] === undefined
      )
        otherSignals.push('with a client never seen for it');
      if (familiar && otherSignals.length === 0) {
        details.familiarNetwork = familiar;
        return {
          rule: 'secret-new-source-ip',
          severity: rule.familiarNetworkSeverity,
          summary: `${summary}; it is inside ${familiar}, a network it already uses, and nothing else is unusual`,
          details,
        };
      }
      if (familiar) details.otherSignals = otherSignals;
    }
    return {
      rule: 'secret-new-source-ip',
      severity: stolenToken ? rule.outsideClusterSeverity : rule.severity,
      summary,
      details,
    };
  },
};

const organizations = new WeakMap<readonly string[], ReturnType<typeof addressSet>>();

/** The network a new address of a person is in that is already theirs or the organisation's, if any. */
function familiarNetwork(policy: Policy, ip: string, known: readonly string[]): string | undefined {
  const cidrs = policy.network.organizationCIDRs;
  let organization = organizations.get(cidrs);
  if (!organization) {
    organization = addressSet(cidrs);
    organizations.set(cidrs, organization);
  }
  if (organization.has(ip)) return `the organisation's networks (${cidrs.join(', ')})`;
  const { familiarPrefix } = policy.network;
  const near = known.find((address) => sameNetwork(ip, address, familiarPrefix));
  if (!near) return undefined;
  const bits = ip.includes(':') ? familiarPrefix.ipv6 : familiarPrefix.ipv4;
  return `the /${bits} of ${near}`;
}

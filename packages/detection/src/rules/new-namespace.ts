import type { Severity } from '@kaudit/audit-schema';
import { formatDuration } from '@kaudit/common';
import { describeRead, listSome, type Rule } from './types';

/**
 * secret-new-namespace: a known identity (past the learning period, its baseline mature, with namespaces in it)
 * reads Secrets in a namespace it never read before. Catches low-and-slow collection — one read every few
 * minutes across many namespaces — that never trips secret-enumeration's 5-minute window. Severity grows
 * with the weighted number of new namespaces in the rule's window; a service account's namespace other
 * than its own counts serviceAccountWeight times. Nodes read the Secrets of whatever pods are scheduled
 * on them, so a new namespace is not news for them.
 */
export const newNamespace: Rule = {
  id: 'secret-new-namespace',
  evaluate({ policy, observation, state, learning, mature }) {
    const rule = policy.rules['secret-new-namespace'];
    const { identity, secret, t } = observation;
    const namespace = secret.namespace;
    // Known: its baseline is older than baseline.matureAfter (a new account's first namespaces are not news).
    if (learning || !mature || !namespace || secret.outcome !== 'allowed') return undefined;
    if (identity.kind === 'node' || identity.kind === 'anonymous') return undefined;
    if (state.namespaces[namespace] !== undefined) return undefined;
    const known = Object.keys(state.namespaces);
    if (known.length === 0) return undefined;
    const weight = (ns: string) =>
      identity.kind === 'serviceaccount' && ns !== identity.namespace ? rule.serviceAccountWeight : 1;
    const since = t - rule.window;
    const recent = new Set<string>();
    for (const [at, ns] of state.recentNewNamespaces ?? [])
      if (at > since && ns !== namespace) recent.add(ns);
    let score = weight(namespace);
    for (const ns of recent) score += weight(ns);
    const severity: Severity =
      score >= rule.highAt ? 'high' : score >= rule.mediumAt ? 'medium' : rule.severity;
    const others =
      recent.size > 0
        ? `; ${recent.size} other new namespace${recent.size === 1 ? '' : 's'} within ${formatDuration(rule.window)}: ${listSome([...recent].sort())}`
        : '';
    const outside = weight(namespace) > 1 ? `, outside its own namespace ${identity.namespace}` : '';
    return {
      rule: 'secret-new-namespace',
      severity,
      summary: `${identity.username} read ${describeRead(observation)}${outside}, a namespace whose Secrets it never read before${others}; it read Secrets in ${listSome(known.sort())}`,
      details: {
        newNamespaces: [namespace, ...[...recent].sort()],
        knownNamespaces: known.slice(0, 20),
        weightedNewNamespaces: score,
        window: formatDuration(rule.window),
      },
    };
  },
};

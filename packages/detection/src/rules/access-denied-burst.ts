import { formatDuration } from '@kaudit/common';
import type { Rule } from './types';

/** secret-access-denied-burst: repeated 403s on secrets by one identity (probing for what it may read). */
export const accessDeniedBurst: Rule = {
  id: 'secret-access-denied-burst',
  evaluate({ policy, observation, state, groupOpen }) {
    const rule = policy.rules['secret-access-denied-burst'];
    const { identity, secret } = observation;
    if (secret.outcome !== 'denied') return undefined;
    if (groupOpen) return { rule: 'secret-access-denied-burst', severity: 'low', summary: '' };
    const since = observation.t - rule.window;
    const denied = state.recentDenied.filter((t) => t > since).length + 1;
    if (denied < rule.threshold) return undefined;
    return {
      rule: 'secret-access-denied-burst',
      severity: rule.severity,
      summary: `${identity.username} was denied ${denied} secret reads within ${formatDuration(rule.window)} (threshold ${rule.threshold})`,
      details: { denied, threshold: rule.threshold, window: formatDuration(rule.window) },
    };
  },
};

import { formatDuration, globMatcher } from '@kaudit/common';
import type { Policy } from '../policy';
import { describeObject, type RequestRule } from './types';

const ignored = new WeakMap<readonly string[], (path: string) => boolean>();

/**
 * anonymous-access: an anonymous or unauthenticated request to any API, not only Secrets (those are
 * secret-anonymous-access's, which says more about them). Allowed: anonymous auth can reach the API
 * (`severity`). Refused: a burst of deniedThreshold within the window is someone probing. The paths
 * system:public-info-viewer opens by design (health, version) are ignorePaths.
 */
export const anonymousApi: RequestRule = {
  id: 'anonymous-access',
  evaluate({ policy, observation, state, active, groupOpen }) {
    const rule: Policy['rules']['anonymous-access'] = policy.rules['anonymous-access'];
    const { identity, facts } = observation;
    if (identity.kind !== 'anonymous' || !facts) return undefined;
    if (observation.secret && active('secret-anonymous-access')) return undefined;
    let skip = ignored.get(rule.ignorePaths);
    if (!skip) {
      skip = globMatcher(rule.ignorePaths);
      ignored.set(rule.ignorePaths, skip);
    }
    if (facts.path && skip(facts.path)) return undefined;
    const code = observation.code;
    const what = `${observation.verb} ${describeObject(observation)}`;
    if (code === undefined || code < 400) {
      return {
        rule: 'anonymous-access',
        severity: rule.severity,
        summary: `Anonymous request (${identity.username}) was ALLOWED to ${what}: anonymous auth reaches the API`,
        details: { allowed: true },
      };
    }
    if (code !== 401 && code !== 403) return undefined;
    if (groupOpen) return { rule: 'anonymous-access', severity: 'low', summary: '' };
    const since = observation.t - rule.window;
    const refused = (state.recentRefused ?? []).filter((t) => t > since).length + 1;
    if (refused < rule.deniedThreshold) return undefined;
    return {
      rule: 'anonymous-access',
      severity: rule.deniedSeverity,
      summary: `${refused} anonymous requests were refused within ${formatDuration(rule.window)} (threshold ${rule.deniedThreshold}), the last ${what} (${code})`,
      details: { allowed: false, refused, threshold: rule.deniedThreshold },
    };
  },
};

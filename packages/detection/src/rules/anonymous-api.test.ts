import { loadSampleEvents } from '@kaudit/testkit';
import { byRule, otherRequest, run, secretRead } from '../../test/events';

describe('detection > rules > anonymous-access', () => {
  const anonymous = { user: { username: 'system:anonymous', groups: ['system:unauthenticated'] } };
  const request = (at: string, uri: string, code: number) =>
    otherRequest(at, {
      ...anonymous,
      requestURI: uri,
      objectRef: undefined,
      verb: 'get',
      responseStatus: { code },
    });

  it('an allowed anonymous request to any API is high', () => {
    const pods = otherRequest('2026-01-12T10:00:00Z', { ...anonymous });
    const [finding] = byRule(run([pods]).findings, 'anonymous-access');
    expect(finding).toMatchObject({ severity: 'high', mitre: ['T1078.001'], details: { allowed: true } });
    expect(finding!.summary).toBe(
      'Anonymous request (system:anonymous) was ALLOWED to list pods default: anonymous auth reaches the API.',
    );
  });

  it('health and version paths are public by design (ignorePaths); secrets are secret-anonymous-access', () => {
    expect(
      byRule(
        run([
          request('2026-01-12T10:00:00Z', '/healthz?verbose', 200),
          request('2026-01-12T10:00:01Z', '/version', 200),
        ]).findings,
        'anonymous-access',
      ),
    ).toEqual([]);
    const { findings } = run([secretRead('2026-01-12T10:00:00Z', anonymous)]);
    expect(byRule(findings, 'anonymous-access')).toEqual([]);
    expect(byRule(findings, 'secret-anonymous-access')).toHaveLength(1);
  });

  it('refused: a burst of deniedThreshold (10) within 5 minutes is medium; 9 are nothing', () => {
    const refused = (n: number) =>
      Array.from({ length: n }, (_, i) =>
        request(`2026-01-12T10:00:${String(i * 5).padStart(2, '0')}Z`, '/api/v1/namespaces', 403),
      );
    expect(byRule(run(refused(9)).findings, 'anonymous-access')).toEqual([]);
    const [finding] = byRule(run(refused(11)).findings, 'anonymous-access');
    expect(finding).toMatchObject({
      severity: 'medium',
      count: 2,
      details: { allowed: false, refused: 10, threshold: 10 },
    });
  });

  it('the real anonymous HEAD / refused by OpenShift (403) is one refusal, not a finding', () => {
    const events = loadSampleEvents('openshift/raw-oauth-apiserver-event.json');
    expect(events.some((e) => e.user.username === 'system:anonymous')).toBe(true);
    expect(byRule(run(events).findings, 'anonymous-access')).toEqual([]);
  });
});

import { buildFinding } from '../test/finding-fixture';
import { createThrottle } from './throttle';

const tenMinutes = 600_000;
const limit = { maxAlerts: 2, windowMs: tenMinutes };
const at = (hhmmss: string) => `2026-01-06T${hhmmss}.000Z`;
const ms = (hhmmss: string) => Date.parse(at(hhmmss));

describe('alerter > throttle', () => {
  test('delivers N per identity and window, folds the rest into one digest when the window closes', () => {
    const throttle = createThrottle<string>();
    const decisions = ['10:00:01', '10:01:00', '10:02:00', '10:03:00', '10:09:59'].map((t, i) =>
      throttle.admit('r', limit, buildFinding({ id: `f${i}`, firstSeen: at(t), lastSeen: at(t) }), `m${i}`),
    );
    expect(decisions).toEqual(['deliver', 'deliver', 'fold', 'fold', 'fold']);
    expect(throttle.heldCount()).toBe(3);
    expect(throttle.due(ms('10:09:59'))).toEqual([]);
    const [due, ...rest] = throttle.due(ms('10:10:00'));
    expect(rest).toEqual([]);
    expect(due!.members).toEqual(['m2', 'm3', 'm4']);
    expect(due!.digest).toMatchObject({
      kind: 'kaudit.digest',
      id: 'digest/r/f2',
      route: 'r',
      identity: 'alice@example.com',
      cluster: 'prod-eu-1',
      count: 3,
      maxAlerts: 2,
      windowStart: '2026-01-06T10:00:00.000Z',
      windowEnd: '2026-01-06T10:10:00.000Z',
      firstSeen: at('10:02:00'),
      lastSeen: at('10:09:59'),
      findingIds: ['f2', 'f3', 'f4'],
      rules: { 'secret-off-hours': 3 },
    });
    expect(throttle.heldCount()).toBe(0);
    expect(throttle.due(ms('10:20:00'))).toEqual([]);
  });

  test('folds later revisions into the digest: never a second alert, never counted against the limit', () => {
    const throttle = createThrottle<string>();
    const finding = (id: string, revision: number, count: number) =>
      buildFinding({ id, revision, count, firstSeen: at('10:00:01'), lastSeen: at(`10:0${count}:00`) });
    expect(throttle.admit('r', limit, finding('a', 1, 1), 'a1')).toBe('deliver');
    throttle.update('r', limit, finding('a', 2, 3), 'a2');
    throttle.update('r', limit, finding('a', 3, 5), 'a3');
    // The updates took no slot: a second finding is still delivered.
    expect(throttle.admit('r', limit, finding('b', 1, 1), 'b1')).toBe('deliver');
    expect(throttle.admit('r', limit, finding('c', 1, 1), 'c1')).toBe('fold');
    throttle.update('r', limit, finding('c', 2, 4), 'c2');
    expect(throttle.heldCount()).toBe(4);
    const [due] = throttle.due(ms('10:10:00'));
    expect(due!.members).toEqual(['c1', 'a2', 'a3', 'c2']);
    expect(due!.digest).toMatchObject({
      id: 'digest/r/c',
      count: 1,
      findingIds: ['c'],
      sample: { id: 'c', revision: 2, count: 4 },
      updated: 1,
      updates: [{ id: 'a', revision: 3, count: 5, lastSeen: at('10:05:00') }],
    });
  });

  test('a window with only updates sends nothing, and releases them when it closes', () => {
    const throttle = createThrottle<string>();
    const finding = buildFinding({ id: 'a', revision: 2, count: 7, firstSeen: at('10:00:01') });
    throttle.update('r', limit, finding, 'a2');
    expect(throttle.due(ms('10:09:59'))).toEqual([]);
    expect(throttle.takeReleased()).toEqual([]);
    expect(throttle.due(ms('10:10:00'))).toEqual([]);
    expect(throttle.takeReleased()).toEqual(['a2']);
    expect(throttle.heldCount()).toBe(0);
  });

  test('windows follow event time, not arrival order', () => {
    const throttle = createThrottle<number>();
    const late = buildFinding({ firstSeen: at('09:59:59'), lastSeen: at('09:59:59') });
    const t = (s: string) => buildFinding({ firstSeen: at(s), lastSeen: at(s) });
    expect(throttle.admit('r', limit, t('10:00:00'), 1)).toBe('deliver');
    expect(throttle.admit('r', limit, t('10:00:01'), 2)).toBe('deliver');
    // Arrives third but belongs to the previous window, which has room.
    expect(throttle.admit('r', limit, late, 3)).toBe('deliver');
    expect(throttle.admit('r', limit, t('10:00:02'), 4)).toBe('fold');
  });

  test('identities, clusters and routes are throttled separately', () => {
    const throttle = createThrottle<number>();
    const one = { ...limit, maxAlerts: 1 };
    const f = (over: Parameters<typeof buildFinding>[0] = {}) =>
      buildFinding({ firstSeen: at('10:00:00'), ...over });
    expect(throttle.admit('r', one, f(), 1)).toBe('deliver');
    expect(throttle.admit('r', one, f(), 2)).toBe('fold');
    expect(throttle.admit('r', one, f({ identity: { username: 'bob', kind: 'user', groups: [] } }), 3)).toBe(
      'deliver',
    );
    expect(throttle.admit('r', one, f({ cluster: 'prod-us-1' }), 4)).toBe('deliver');
    expect(throttle.admit('other', one, f(), 5)).toBe('deliver');
  });

  test('findings delivered before a restart count against the limit and are never folded', () => {
    const throttle = createThrottle<number>();
    const f = () => buildFinding({ firstSeen: at('10:00:00') });
    expect(throttle.admit('r', limit, f(), 1, true)).toBe('deliver');
    expect(throttle.admit('r', limit, f(), 2, true)).toBe('deliver');
    expect(throttle.admit('r', limit, f(), 3, true)).toBe('deliver');
    expect(throttle.admit('r', limit, f(), 4)).toBe('fold');
  });

  test('a digest summarises rules and the highest severity', () => {
    const throttle = createThrottle<number>();
    const one = { ...limit, maxAlerts: 1 };
    throttle.admit('r', one, buildFinding({ firstSeen: at('10:00:00') }), 0);
    throttle.admit(
      'r',
      one,
      buildFinding({ firstSeen: at('10:00:01'), severity: 'low', rule: 'secret-enumeration' }),
      1,
    );
    throttle.admit(
      'r',
      one,
      buildFinding({ firstSeen: at('10:00:02'), severity: 'critical', rule: 'secret-enumeration' }),
      2,
    );
    throttle.admit('r', one, buildFinding({ firstSeen: at('10:00:03'), severity: 'medium' }), 3);
    const [due] = throttle.due(ms('10:10:00'));
    expect(due!.digest.rules).toEqual({ 'secret-enumeration': 2, 'secret-off-hours': 1 });
    expect(due!.digest.maxSeverity).toBe('critical');
  });

  test('late findings of a closed window make a second digest; the window is forgotten one window later', () => {
    const throttle = createThrottle<number>({ graceMs: 30_000 });
    const one = { ...limit, maxAlerts: 1 };
    const f = (s: string) => buildFinding({ firstSeen: at(s), lastSeen: at(s) });
    throttle.admit('r', one, f('10:00:00'), 0);
    throttle.admit('r', one, f('10:05:00'), 1);
    expect(throttle.due(ms('10:10:29'))).toEqual([]); // grace
    expect(throttle.due(ms('10:10:30')).map((d) => d.members)).toEqual([[1]]);
    expect(throttle.admit('r', one, f('10:09:00'), 2)).toBe('fold');
    expect(throttle.due(ms('10:11:00')).map((d) => d.digest.count)).toEqual([1]);
    expect(throttle.windowCount()).toBe(1);
    expect(throttle.due(ms('10:20:30'))).toEqual([]);
    expect(throttle.windowCount()).toBe(0);
  });
});

import type { AuditEvent, Finding } from '@kaudit/audit-schema';
import { byRule, otherRequest, run, secretObject, secretRead, WARMUP } from '../test/events';
import { latestRevisions } from './emission';
import { createEngine } from './engine';
import { defaultPolicy, type PolicyInput } from './policy';

const at = (minute: number, second = 0) =>
  `2026-01-12T11:${String(minute).padStart(2, '0')}:${String(second).padStart(2, '0')}.000000Z`;

/** Events one by one: which findings (rule, revision, count) each event released. */
function releases(events: AuditEvent[], input: PolicyInput = {}) {
  const engine = createEngine({ policy: defaultPolicy(input) });
  return events.map((event) =>
    engine.process({ cluster: 'prod', event }).map((f) => [f.rule, f.revision, f.count] as const),
  );
}

/** 30 reads of distinct secrets by mallory, 2 s apart from 11:00:00 (threshold: 20 in 5 minutes). */
function enumeration(): AuditEvent[] {
  return Array.from({ length: 30 }, (_, i) =>
    secretRead(at(0, i * 2), { user: { username: 'mallory' }, ...secretObject(`ns${i % 3}`, `s${i}`) }),
  );
}

describe('detection > emission', () => {
  it('reports a finding once its request is past the watermark, not when its window closes', () => {
    const anonymous = secretRead(at(0), { user: { username: 'system:anonymous' } });
    // 29 s later the watermark (30 s lateness) has not passed it; 31 s later it has.
    const out = releases([otherRequest(WARMUP), anonymous, otherRequest(at(0, 29)), otherRequest(at(0, 31))]);
    expect(out.slice(1, 3)).toEqual([[], []]);
    expect(out[3]).toEqual([['secret-anonymous-access', 1, 1]]);
  });

  it('reports a threshold rule when the threshold is crossed, then updates the same id', () => {
    const events = [otherRequest(WARMUP), ...enumeration(), otherRequest('2026-01-12T12:00:00Z')];
    const { reports, findings } = run(events);
    const revisions = byRule(reports, 'secret-enumeration');
    expect(new Set(revisions.map((f) => f.id)).size).toBe(1);
    // The 20th distinct secret crosses it; reads keep joining until 11:00:58, inside one update interval.
    expect(revisions.map((f) => [f.revision, f.count])).toEqual([
      [1, 1],
      [2, 11],
    ]);
    expect(revisions[0]!.lastSeen).toBe('2026-01-12T11:00:38.000Z');
    const [final] = byRule(findings, 'secret-enumeration');
    expect(final).toMatchObject({ revision: 2, count: 11, lastSeen: '2026-01-12T11:00:58.000Z' });
    expect(final!.objects).toHaveLength(11);
  });

  it('updates at most once per grouping.updateInterval of evidence time while the window is open', () => {
    const reads = Array.from({ length: 10 }, (_, i) =>
      secretRead(at(i), { user: { username: 'system:anonymous' }, ...secretObject('a', `s${i}`) }),
    );
    const { reports } = run([otherRequest(WARMUP), ...reads], { grouping: { updateInterval: '3m' } });
    // Reads at 11:00..11:09 fall in the 11:00-11:10 window: first at 11:00, then 11:03, 11:06, 11:09.
    expect(reports.map((f) => [f.revision, f.count])).toEqual([
      [1, 1],
      [2, 4],
      [3, 7],
      [4, 10],
    ]);
  });

  it('closing a window whose last report has everything adds no revision', () => {
    const { reports } = run([
      otherRequest(WARMUP),
      secretRead(at(0), { user: { username: 'system:anonymous' } }),
      otherRequest('2026-01-12T13:00:00Z'),
    ]);
    expect(reports.map((f) => [f.rule, f.revision])).toEqual([['secret-anonymous-access', 1]]);
  });

  it('a replay gives the same final findings, whatever the lateness and the idle flushes', () => {
    const events = [
      otherRequest(WARMUP),
      ...enumeration(),
      secretRead(at(3), { user: { username: 'system:anonymous' } }),
      secretRead('2026-01-12T22:00:00Z'),
      otherRequest('2026-01-13T12:00:00Z'),
    ];
    const reference = run(events, { eventTime: { allowedLateness: '30d' } });
    const engine = createEngine({ policy: defaultPolicy() });
    const reports: Finding[] = [];
    events.forEach((event, i) => {
      reports.push(...engine.process({ cluster: 'prod', event }));
      if (i % 7 === 0) reports.push(...engine.flush({ idleMs: 45_000 }));
    });
    reports.push(...engine.flush());
    expect(latestRevisions(reports)).toEqual(reference.findings);
    expect(reference.findings.map((f) => f.rule).sort()).toEqual([
      'secret-anonymous-access',
      'secret-enumeration',
      'secret-off-hours',
    ]);
  });

  it('latestRevisions keeps the highest revision of each id in first-report order', () => {
    const f = (id: string, revision?: number) => ({ id, revision }) as Finding;
    expect(latestRevisions([f('a', 1), f('b'), f('a', 3), f('a', 2)])).toEqual([f('a', 3), f('b')]);
  });
});

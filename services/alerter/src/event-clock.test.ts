import { buildFinding } from '../test/finding-fixture';
import { createEventClock } from './event-clock';
import { createThrottle } from './throttle';

const minute = 60_000;
const t0 = Date.parse('2026-01-06T10:00:00.000Z');
const limit = { maxAlerts: 2, windowMs: 10 * minute };
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * One identity's findings, a minute apart over three 10-minute windows, with one late finding of the
 * first window read after that window closed, then the stream goes quiet; the alerter's flush runs after every finding (the worst
 * case: a flush cannot come more often). `arrivalMs` says when each finding is read.
 */
function throttled(arrivalMs: (eventMs: number, index: number) => number) {
  let wall = arrivalMs(t0, 0);
  const clock = createEventClock({ now: () => wall });
  const throttle = createThrottle<number>({ graceMs: 30_000 });
  const events = Array.from({ length: 30 }, (_, i) => t0 + i * minute);
  events.splice(12, 0, t0 + 9 * minute + 30_000); // late: read after the 10:11 one closed its window
  const decisions: string[] = [];
  const digests: string[] = [];
  const flush = () => {
    for (const { digest } of throttle.due(clock.closing()!, clock.watermark()!)) {
      digests.push(`${digest.windowStart} ${digest.count}`);
    }
  };
  events.forEach((eventMs, i) => {
    wall = Math.max(wall, arrivalMs(eventMs, i));
    clock.observe(eventMs);
    const finding = buildFinding({ id: `f${i}`, firstSeen: iso(eventMs), lastSeen: iso(eventMs) });
    decisions.push(throttle.admit('r', limit, finding, i));
    flush();
  });
  wall += 30 * minute; // quiet: the last window still closes, at the wall clock's pace
  flush();
  return { decisions, digests, windowsLeft: throttle.windowCount() };
}

describe('alerter > event-clock', () => {
  test('a replayed backlog is throttled exactly like the live stream', () => {
    const live = throttled((eventMs) => eventMs + 5000); // read 5 s after the event
    const replay = throttled((_eventMs, i) => t0 + 7 * 24 * 60 * minute + i * 100); // a week later, 10/s

    expect(replay).toEqual(live);
    expect(live.decisions.filter((d) => d === 'deliver')).toHaveLength(6); // 2 per window, no more
    // The late finding of the first window was still counted against it: a second digest, not a pass.
    expect(live.decisions[12]).toBe('fold');
    expect(live.digests).toEqual([
      '2026-01-06T10:00:00.000Z 8',
      '2026-01-06T10:00:00.000Z 1',
      '2026-01-06T10:10:00.000Z 8',
      '2026-01-06T10:20:00.000Z 8',
    ]);
  });

  test('a finding from the future cannot close the open windows', () => {
    let wall = t0 + 5 * minute;
    const clock = createEventClock({ now: () => wall });
    const throttle = createThrottle<number>();
    const f = (eventMs: number, id: string) =>
      buildFinding({ id, firstSeen: iso(eventMs), lastSeen: iso(eventMs) });
    for (let i = 0; i < 3; i++) throttle.admit('r', limit, f(t0 + i * minute, `f${i}`), i);
    clock.observe(t0 + 2 * minute);
    // Its host's clock is a century ahead; its time is believed up to a minute ahead of ours.
    clock.observe(Date.parse('2100-01-01T00:00:00.000Z'));
    expect(clock.watermark()).toBe(wall + 60_000);
    wall += 1000;
    expect(throttle.due(clock.closing()!, clock.watermark()!)).toEqual([]);
    expect(throttle.admit('r', limit, f(t0 + 6 * minute, 'f6'), 6)).toBe('fold');
    expect(throttle.heldCount()).toBe(2);
  });

  test('nothing before the first finding', () => {
    const clock = createEventClock({ now: () => t0 });
    expect(clock.watermark()).toBeUndefined();
    expect(clock.closing()).toBeUndefined();
  });
});

import { createBusinessHours, createLocalClock } from './business-hours';
import { defaultPolicy } from './policy';

describe('detection > business-hours', () => {
  const berlin = defaultPolicy({ timezone: 'Europe/Berlin', businessHours: { holidays: ['2026-12-25'] } });
  const newYork = defaultPolicy({ timezone: 'America/New_York' });
  const inHours = (policy: typeof berlin, iso: string) =>
    createBusinessHours(policy).contains(createLocalClock(policy.timezone)(Date.parse(iso)));

  it.each([
    // Europe/Berlin springs forward on Sunday 2026-03-29: 08:30 local is 07:30Z before, 06:30Z after.
    ['Berlin Fri before DST, 07:30 CET', berlin, '2026-03-27T06:30:00Z', false],
    ['Berlin Fri before DST, 08:30 CET', berlin, '2026-03-27T07:30:00Z', true],
    ['Berlin Mon after DST, 08:30 CEST', berlin, '2026-03-30T06:30:00Z', true],
    ['Berlin Mon after DST, 18:59 CEST', berlin, '2026-03-30T16:59:00Z', true],
    ['Berlin Mon after DST, 19:00 CEST (end is exclusive)', berlin, '2026-03-30T17:00:00Z', false],
    // ...and falls back on Sunday 2026-10-25.
    ['Berlin Fri before fall-back, 08:30 CEST', berlin, '2026-10-23T06:30:00Z', true],
    ['Berlin Mon after fall-back, 07:30 CET', berlin, '2026-10-26T06:30:00Z', false],
    ['Berlin Mon after fall-back, 08:30 CET', berlin, '2026-10-26T07:30:00Z', true],
    // America/New_York springs forward on 2026-03-08.
    ['New York Fri before DST, 07:30 EST', newYork, '2026-03-06T12:30:00Z', false],
    ['New York Mon after DST, 08:30 EDT', newYork, '2026-03-09T12:30:00Z', true],
    ['New York Mon after fall-back (2026-11-01), 07:30 EST', newYork, '2026-11-02T12:30:00Z', false],
    ['weekend: Saturday noon', berlin, '2026-01-10T11:00:00Z', false],
    ['weekend: Sunday noon', berlin, '2026-01-11T11:00:00Z', false],
    ['holiday: Christmas Friday noon', berlin, '2026-12-25T11:00:00Z', false],
    ['holiday starts at local midnight (23:30Z the day before)', berlin, '2026-12-24T23:30:00Z', false],
    ['the day before the holiday, noon', berlin, '2026-12-24T11:00:00Z', true],
    ['midnight: Tuesday 00:00 local', berlin, '2026-01-12T23:00:00Z', false],
    ['midnight in UTC is 01:00 in Berlin, still off hours', berlin, '2026-01-13T00:00:00Z', false],
  ])('%s', (_name, policy, iso, expected) => {
    expect(inHours(policy, iso)).toBe(expected);
  });

  it('labels local time with the zone abbreviation in force', () => {
    const clock = createLocalClock('Europe/Berlin');
    expect(clock(Date.parse('2026-03-29T00:30:00Z')).label).toBe('sun 2026-03-29 01:30 GMT+1');
    expect(clock(Date.parse('2026-03-29T01:30:00Z'))).toMatchObject({
      hour: 3,
      minuteOfDay: 210,
      weekday: 6,
    });
  });

  it('handles zones with a half-hour offset', () => {
    const clock = createLocalClock('Asia/Kolkata');
    expect(clock(Date.parse('2026-01-05T03:40:00Z'))).toMatchObject({ hour: 9, minuteOfDay: 9 * 60 + 10 });
  });

  it('a 24-hour policy covers midnight', () => {
    const always = defaultPolicy({
      businessHours: {
        days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
        start: '00:00',
        end: '24:00',
      },
    });
    expect(inHours(always, '2026-01-12T00:00:00Z')).toBe(true);
    expect(inHours(always, '2026-01-11T23:59:59Z')).toBe(true);
  });
});

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

  describe('hours spanning midnight (a night shift, mon-fri 22:00-06:00)', () => {
    const night = defaultPolicy({
      timezone: 'Europe/Berlin',
      businessHours: { start: '22:00', end: '06:00', holidays: ['2026-12-24'] },
    });
    it.each([
      ['Mon 21:59 CET, before the shift', '2026-01-12T20:59:00Z', false],
      ['Mon 22:00 CET, the shift starts', '2026-01-12T21:00:00Z', true],
      ['Mon 23:59 CET', '2026-01-12T22:59:00Z', true],
      ["Tue 00:00 CET, Monday's shift after midnight", '2026-01-12T23:00:00Z', true],
      ['Tue 05:59 CET', '2026-01-13T04:59:00Z', true],
      ['Tue 06:00 CET, the end is exclusive', '2026-01-13T05:00:00Z', false],
      ['Tue noon, between shifts', '2026-01-13T11:00:00Z', false],
      ["Mon 03:00 CET belongs to Sunday's shift (not a listed day)", '2026-01-12T02:00:00Z', false],
      ["Sat 03:00 CET belongs to Friday's shift", '2026-01-17T02:00:00Z', true],
      ['Sat 22:00 CET, no shift starts on Saturday', '2026-01-17T21:00:00Z', false],
      // Berlin springs forward on Sunday 2026-03-29 (02:00 -> 03:00) and falls back on 2026-10-25.
      ['Tue 2026-03-31 05:30 CEST (03:30Z), after DST began', '2026-03-31T03:30:00Z', true],
      [
        'Tue 2026-03-31 06:30 CEST (04:30Z) is after the shift, though 05:30 in winter time',
        '2026-03-31T04:30:00Z',
        false,
      ],
      ['Fri 2026-03-27 22:30 CET (21:30Z)', '2026-03-27T21:30:00Z', true],
      ["Sat 2026-03-28 05:59 CET, end of Friday's shift", '2026-03-28T04:59:00Z', true],
      ['Mon 2026-10-26 05:30 CET after the fall-back night (04:30Z)', '2026-10-26T04:30:00Z', false],
      ['Tue 2026-10-27 05:30 CET (04:30Z)', '2026-10-27T04:30:00Z', true],
      ['Tue 2026-10-27 06:30 CET (05:30Z)', '2026-10-27T05:30:00Z', false],
      ['Thu 2026-12-24 23:00, the shift of a holiday does not happen', '2026-12-24T22:00:00Z', false],
      ['Fri 2026-12-25 03:00, still the holiday shift', '2026-12-25T02:00:00Z', false],
      ['Wed 2026-12-23 23:30, the evening before the holiday works', '2026-12-23T22:30:00Z', true],
      ['Thu 2026-12-24 03:00 is the shift of the 23rd', '2026-12-24T02:00:00Z', true],
    ])('%s', (_name, iso, expected) => {
      expect(inHours(night, iso)).toBe(expected);
    });

    const everyNight = defaultPolicy({
      timezone: 'Europe/Berlin',
      businessHours: {
        days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
        start: '22:00',
        end: '06:00',
      },
    });
    it.each([
      // Spring forward, Sun 2026-03-29: 02:00 CET becomes 03:00 CEST, so that shift is seven hours long.
      ['01:30 CET', '2026-03-29T00:30:00Z', true],
      ['03:30 CEST', '2026-03-29T01:30:00Z', true],
      ['05:59 CEST', '2026-03-29T03:59:00Z', true],
      ['06:00 CEST, the end by the wall clock', '2026-03-29T04:00:00Z', false],
      // Fall back, Sun 2026-10-25: 02:30 happens twice, both inside; that shift is nine hours long.
      ['the first 02:30 (CEST)', '2026-10-25T00:30:00Z', true],
      ['the second 02:30 (CET)', '2026-10-25T01:30:00Z', true],
      ['05:59 CET', '2026-10-25T04:59:00Z', true],
      ['06:00 CET', '2026-10-25T05:00:00Z', false],
    ])('on a DST night, every night 22:00-06:00: %s', (_name, iso, expected) => {
      expect(inHours(everyNight, iso)).toBe(expected);
    });

    it('describes itself as overnight', () => {
      expect(createBusinessHours(night).describe()).toBe(
        'mon,tue,wed,thu,fri 22:00-06:00 (overnight) Europe/Berlin except holidays',
      );
    });

    it('a month boundary: Sun 2026-03-01 02:00 belongs to Saturday 2026-02-28 (not listed)', () => {
      const weekend = defaultPolicy({ businessHours: { days: ['sat'], start: '20:00', end: '04:00' } });
      expect(inHours(weekend, '2026-03-01T02:00:00Z')).toBe(true);
      expect(inHours(weekend, '2026-02-28T02:00:00Z')).toBe(false);
    });
  });
});

import { DateTime } from 'luxon';
import type { Policy } from './policy';
import { weekdays } from './policy';

/** Wall-clock time in the policy's zone. weekday: 0 = Monday ... 6 = Sunday. */
export interface LocalTime {
  weekday: number;
  hour: number;
  /** Minutes since local midnight. */
  minuteOfDay: number;
  /** YYYY-MM-DD, local. */
  date: string;
  /** e.g. "Sun 2026-03-29 02:30 CEST", for summaries. */
  label: string;
}

const BUCKET_MS = 15 * 60_000;

/**
 * Converts event times to local wall-clock time with luxon (IANA rules, so DST shifts are exact). Every
 * zone offset in the tz database is a multiple of 15 minutes and changes only on such a boundary, so one
 * luxon conversion per 15-minute bucket of UTC serves every event inside it: the hot path stays cheap.
 */
export function createLocalClock(timezone: string): (ms: number) => LocalTime {
  const cache = new Map<number, DateTime>();
  return (ms) => {
    const bucket = Math.floor(ms / BUCKET_MS);
    let start = cache.get(bucket);
    if (!start) {
      if (cache.size > 4096) cache.clear();
      start = DateTime.fromMillis(bucket * BUCKET_MS, { zone: timezone });
      cache.set(bucket, start);
    }
    const offsetMinutes = Math.floor((ms - bucket * BUCKET_MS) / 60_000);
    const minuteOfDay = start.hour * 60 + start.minute + offsetMinutes;
    const hour = Math.floor(minuteOfDay / 60);
    const time = `${String(hour).padStart(2, '0')}:${String(minuteOfDay % 60).padStart(2, '0')}`;
    const date = start.toISODate()!;
    return {
      weekday: start.weekday - 1,
      hour,
      minuteOfDay,
      date,
      label: `${weekdays[start.weekday - 1]} ${date} ${time} ${start.offsetNameShort ?? timezone}`,
    };
  };
}

export interface BusinessHours {
  /** True inside business hours: a listed weekday, not a holiday, start <= local time < end. */
  contains(local: LocalTime): boolean;
  /** "mon-fri 08:00-19:00 Europe/Berlin", for summaries. */
  describe(): string;
}

export function createBusinessHours(policy: Pick<Policy, 'businessHours' | 'timezone'>): BusinessHours {
  const { days, start, end, holidays } = policy.businessHours;
  const dayIndexes = new Set(days.map((day) => weekdays.indexOf(day)));
  const holidaySet = new Set(holidays);
  const hhmm = (minutes: number) =>
    `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
  return {
    contains: (local) =>
      dayIndexes.has(local.weekday) &&
      !holidaySet.has(local.date) &&
      local.minuteOfDay >= start &&
      local.minuteOfDay < end,
    describe: () =>
      `${days.join(',')} ${hhmm(start)}-${hhmm(end)} ${policy.timezone}${holidays.length > 0 ? ' except holidays' : ''}`,
  };
}

import { DateTime } from 'luxon';
import type { Policy } from './policy';
import { weekdays } from './policy';

/** Wall-clock time in the policy's zone. weekday: 0 = Monday ... 6 = Sunday. */
export interface LocalTime {
  readonly weekday: number;
  readonly hour: number;
  /** Minutes since local midnight. */
  readonly minuteOfDay: number;
  /** YYYY-MM-DD, local. */
  readonly date: string;
  /** e.g. "Sun 2026-03-29 02:30 CEST", for summaries. */
  readonly label: string;
}

const BUCKET_MS = 15 * 60_000;

/**
 * Converts event times to local wall-clock time with luxon (IANA rules, so DST shifts are exact). Every
 * zone offset in the tz database is a multiple of 15 minutes and changes only on such a boundary, so one
 * luxon conversion per 15-minute bucket of UTC serves every event inside it: the hot path stays cheap.
 * Everything taken from luxon is read once per bucket: its getters are not free (offsetNameShort
 * formats with Intl on every call, and was two thirds of the engine's time in a non-UTC zone).
 */
export function createLocalClock(timezone: string): (ms: number) => LocalTime {
  const cache = new Map<number, { weekday: number; startMinute: number; date: string; zoneName: string }>();
  // Events come mostly in time order: the answer for the last minute asked serves the next request too.
  let lastMinute = Number.NaN;
  let last: LocalTime | undefined;
  return (ms) => {
    const minute = Math.floor(ms / 60_000);
    if (minute === lastMinute && last) return last;
    const bucket = Math.floor(ms / BUCKET_MS);
    let start = cache.get(bucket);
    if (!start) {
      if (cache.size > 4096) cache.clear();
      const local = DateTime.fromMillis(bucket * BUCKET_MS, { zone: timezone });
      start = {
        weekday: local.weekday - 1,
        startMinute: local.hour * 60 + local.minute,
        date: local.toISODate()!,
        zoneName: local.offsetNameShort ?? timezone,
      };
      cache.set(bucket, start);
    }
    const offsetMinutes = Math.floor((ms - bucket * BUCKET_MS) / 60_000);
    const minuteOfDay = start.startMinute + offsetMinutes;
    const hour = Math.floor(minuteOfDay / 60);
    const time = `${String(hour).padStart(2, '0')}:${String(minuteOfDay % 60).padStart(2, '0')}`;
    last = {
      weekday: start.weekday,
      hour,
      minuteOfDay,
      date: start.date,
      label: `${weekdays[start.weekday]} ${start.date} ${time} ${start.zoneName}`,
    };
    lastMinute = minute;
    return last;
  };
}

export interface BusinessHours {
  /**
   * True inside business hours: a listed weekday, not a holiday, start <= local time < end. When start is
   * after end the hours span midnight and belong to the day they start on: with mon-fri 22:00-06:00,
   * Tuesday 03:00 is Monday's shift (inside), Monday 03:00 is Sunday's (outside), and a holiday on
   * Monday cancels the shift that starts on Monday evening.
   */
  contains(local: LocalTime): boolean;
  /** "mon-fri 08:00-19:00 Europe/Berlin", for summaries. */
  describe(): string;
}

export function createBusinessHours(policy: Pick<Policy, 'businessHours' | 'timezone'>): BusinessHours {
  const { days, start, end, holidays } = policy.businessHours;
  const dayIndexes = new Set(days.map((day) => weekdays.indexOf(day)));
  const holidaySet = new Set(holidays);
  const overnight = start > end;
  const workday = (weekday: number, date: string) => dayIndexes.has(weekday) && !holidaySet.has(date);
  const hhmm = (minutes: number) =>
    `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
  return {
    contains: (local) => {
      if (!overnight) {
        return workday(local.weekday, local.date) && local.minuteOfDay >= start && local.minuteOfDay < end;
      }
      if (local.minuteOfDay >= start) return workday(local.weekday, local.date);
      // After midnight: the shift that started the evening before (by local date, so DST nights are the
      // same as any other: the wall clock decides).
      return local.minuteOfDay < end && workday((local.weekday + 6) % 7, previousDate(local.date));
    },
    describe: () =>
      `${days.join(',')} ${hhmm(start)}-${hhmm(end)}${overnight ? ' (overnight)' : ''} ${policy.timezone}${holidays.length > 0 ? ' except holidays' : ''}`,
  };
}

/** "2026-03-01" -> "2026-02-28" (calendar arithmetic on the local date, no zone involved). */
function previousDate(date: string): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
}

import fc from 'fast-check';
import {
  backoffDelayMs,
  compileGlob,
  formatDuration,
  globMatcher,
  parseDurationMs,
  parseRetryAfterMs,
  sleep,
  withTimeout,
} from './index';

describe('common > duration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    [' 1.5s ', 1500],
    ['1000', 1000],
    [1000, 1000],
    ['5 m', 300_000],
    ['soon', undefined],
    ['-1s', undefined],
    ['5y', undefined],
    ['', undefined],
    [-1, undefined],
    [Number.NaN, undefined],
  ] as const)('%j -> %j ms', (text, expected) => {
    expect(parseDurationMs(text)).toBe(expected);
  });

  it.each([
    [300_000, '5m'],
    [1_209_600_000, '2w'],
    [1500, '1500ms'],
  ])('formats %d as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDurationMs(text)).toBe(ms);
  });
});

describe('common > glob', () => {
  const viaRegex = (pattern: string, value: string) =>
    new RegExp(
      `^${pattern
        .split('')
        .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.+()|[\]{}]/g, '\\$&')))
        .join('')}$`,
      's',
    ).test(value);

  it('agrees with the backtracking regular expression it replaces, `*` and `?` alike', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[ab:*?]{0,8}$/),
        fc.stringMatching(/^[ab:]{0,12}$/),
        (pattern, value) => {
          expect(compileGlob(pattern).test(value)).toBe(viaRegex(pattern, value));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it.each([
    ['bot-??', 'bot-42', true],
    ['bot-??', 'bot-4', false],
    ['bot-??', 'bot-423', false],
    ['a.b', 'axb', false],
    ['(x)+', '(x)+', true],
    ['*', '', true],
    ['', '', true],
    ['', 'x', false],
  ])('%s on %s: %s', (pattern, value, expected) => {
    expect(compileGlob(pattern).test(value)).toBe(expected);
  });

  it('decides a 300,000-character value that almost matches a many-star pattern with `?`', () => {
    const matcher = globMatcher(['system:serviceaccount:*:?*:*:x']);
    expect(matcher(`system:serviceaccount:${'a:'.repeat(150_000)}y`)).toBe(false);
    expect(matcher(`system:serviceaccount:${'a:'.repeat(150_000)}x`)).toBe(true);
    expect(matcher(undefined)).toBe(false);
    expect(globMatcher([])('x')).toBe(false);
  });
});

describe('common > backoff', () => {
  it('full jitter: uniform below the capped exponential ceiling', () => {
    const options = { initialDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelayMs(0, { ...options, random: () => 1 })).toBe(100);
    expect(backoffDelayMs(3, { ...options, random: () => 1 })).toBe(800);
    expect(backoffDelayMs(4, { ...options, random: () => 1 })).toBe(1000);
    expect(backoffDelayMs(4, { ...options, random: () => 0.5 })).toBe(500);
    expect(backoffDelayMs(5000, { ...options, random: () => 0 })).toBe(0);
  });

  it('no jitter doubles to the ceiling; a ratio adds up to that fraction', () => {
    expect(
      [0, 1, 2, 7].map((a) => backoffDelayMs(a, { initialDelayMs: 500, maxDelayMs: 30_000, jitter: 'none' })),
    ).toEqual([500, 1000, 2000, 30_000]);
    expect(backoffDelayMs(1, { initialDelayMs: 10_000, factor: 1.5, jitter: 0.2, random: () => 1 })).toBe(
      18_000,
    );
  });

  it('parses Retry-After as seconds, an HTTP date or the first of repeated headers', () => {
    expect(parseRetryAfterMs('3')).toBe(3000);
    expect(parseRetryAfterMs(['7'], 0)).toBe(7000);
    expect(parseRetryAfterMs('Thu, 01 Jan 1970 00:00:05 GMT', 0)).toBe(5000);
    expect(parseRetryAfterMs('soon')).toBeUndefined();
    expect(parseRetryAfterMs(null)).toBeUndefined();
  });
});

describe('common > sleep and timeout', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('sleep ends early with the reason of an abort', async () => {
    const controller = new AbortController();
    const slept = sleep(60_000, controller.signal);
    controller.abort(new Error('stopping'));
    await expect(slept).rejects.toThrow('stopping');
    await expect(sleep(1, controller.signal)).rejects.toThrow('stopping');
  });

  it('withTimeout resolves with the promise when it is first', async () => {
    await expect(withTimeout(Promise.resolve('x'), 1000, () => 'late')).resolves.toBe('x');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('withTimeout resolves with onTimeout, or rejects with what it throws', async () => {
    const never = new Promise<string>(() => {});
    const resolved = withTimeout(never, 1000, () => 'timed out');
    const rejected = withTimeout(never, 2000, () => {
      throw new Error('too slow');
    });
    jest.advanceTimersByTime(2000);
    await expect(resolved).resolves.toBe('timed out');
    await expect(rejected).rejects.toThrow('too slow');
  });
});

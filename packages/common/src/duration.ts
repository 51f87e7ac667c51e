/**
 * Durations, one grammar for policies and environment variables alike: "250ms", "30s", "5m", "2h", "7d",
 * "2w", fractions ("1.5s"), spaces around the number and unit. A bare number is milliseconds. Returns
 * undefined when the text is not a duration, so each caller can name the path or variable at fault.
 */
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** The units, for error messages. */
export const DURATION_EXAMPLES = '250ms, 30s, 5m, 2h, 7d, 2w';

export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/.exec(value);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 'ms']!);
}

/** The shortest exact spelling, for summaries: 300000 -> "5m". */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

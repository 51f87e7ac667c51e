/** How far ahead of this machine's clock a finding's time may be believed (clocks of other hosts). */
export const MAX_CLOCK_SKEW_MS = 60_000;

/**
 * The time of the findings stream, for the throttle: taken from the findings themselves (`firstSeen`),
 * never from the wall clock, so a replayed backlog of last week's findings is throttled exactly like
 * the live stream was. Two readings:
 * - `watermark()`: the latest event time seen. Windows are forgotten by it, so a window is never
 *   forgotten while findings of its time may still be read (the old wall-clock watermark forgot a
 *   replayed window at the next flush, and its later findings started a fresh count).
 * - `closing()`: the watermark advanced by the wall time since the last finding arrived. When the
 *   stream is idle, event time goes on at the wall clock's pace, so the last window's digest still goes
 *   out; while findings arrive, it is the watermark plus a moment.
 * Both are capped at now + MAX_CLOCK_SKEW_MS: one finding with a firstSeen in the future cannot close
 * every window at once (that disabled throttling).
 */
export function createEventClock(options: { now: () => number; maxSkewMs?: number }) {
  const { now } = options;
  const maxSkewMs = options.maxSkewMs ?? MAX_CLOCK_SKEW_MS;
  let latestMs: number | undefined;
  let lastArrivalMs = 0;
  return {
    observe(eventMs: number): void {
      if (!Number.isFinite(eventMs)) return;
      const arrival = now();
      const capped = Math.min(eventMs, arrival + maxSkewMs);
      if (latestMs === undefined || capped > latestMs) latestMs = capped;
      lastArrivalMs = arrival;
    },
    /** Undefined until the first finding. */
    watermark(): number | undefined {
      return latestMs === undefined ? undefined : Math.min(latestMs, now() + maxSkewMs);
    },
    closing(): number | undefined {
      if (latestMs === undefined) return undefined;
      const at = now();
      return Math.min(latestMs + Math.max(0, at - lastArrivalMs), at + maxSkewMs);
    },
  };
}

export type EventClock = ReturnType<typeof createEventClock>;

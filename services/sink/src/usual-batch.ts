/**
 * "A batch of the usual size", which readiness and admission ask the spool to have room for: the
 * largest of the last `window` requests, in the bytes its record takes in the spool (headers
 * included; measured for every request, also those that went straight to Kafka, so the size is known
 * when an outage starts), never below `floorBytes` (a quiet sink still keeps room for a real batch)
 * and never above `capBytes` (the spool bound: an empty spool always takes the next batch).
 * A rolling maximum rather than a mean or p95: one refused batch costs the API server a retry, one
 * batch of headroom too many costs nothing.
 */
export interface UsualBatch {
  observe(bytes: number): void;
  bytes(): number;
}

export function createUsualBatch(options: {
  floorBytes: number;
  capBytes: number;
  window?: number;
}): UsualBatch {
  const window = options.window ?? 64;
  const recent: number[] = [];
  let next = 0;
  return {
    observe(bytes) {
      recent[next] = bytes;
      next = (next + 1) % window;
    },
    bytes() {
      let max = options.floorBytes;
      for (const bytes of recent) if (bytes > max) max = bytes;
      return Math.min(max, options.capBytes);
    },
  };
}

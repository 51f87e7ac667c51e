/**
 * A binary min-heap of (time, key): "this identity has something due at this event time" (a buffered
 * request to process or a window to close). Duplicates are allowed and harmless — servicing a key that
 * has nothing due is a no-op — which keeps inserts O(log n) without a decrease-key.
 */
export interface DueQueue {
  readonly size: number;
  peekTime(): number | undefined;
  push(time: number, key: string): void;
  pop(): string | undefined;
}

export function createDueQueue(): DueQueue {
  const times: number[] = [];
  const keys: string[] = [];
  return {
    get size() {
      return times.length;
    },
    peekTime: () => times[0],
    push(time, key) {
      let i = times.length;
      times.push(time);
      keys.push(key);
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (times[parent]! <= time) break;
        times[i] = times[parent]!;
        keys[i] = keys[parent]!;
        i = parent;
      }
      times[i] = time;
      keys[i] = key;
    },
    pop() {
      if (times.length === 0) return undefined;
      const top = keys[0];
      const lastTime = times.pop()!;
      const lastKey = keys.pop()!;
      const n = times.length;
      if (n > 0) {
        let i = 0;
        for (;;) {
          const left = 2 * i + 1;
          if (left >= n) break;
          const right = left + 1;
          const child = right < n && times[right]! < times[left]! ? right : left;
          if (times[child]! >= lastTime) break;
          times[i] = times[child]!;
          keys[i] = keys[child]!;
          i = child;
        }
        times[i] = lastTime;
        keys[i] = lastKey;
      }
      return top;
    },
  };
}

import type { DeadLetter } from '@kaudit/audit-schema';

/**
 * Dead letters, built and serialized once for every service. Kafka refuses messages above its
 * max.message.bytes (1 MiB by default). A dead letter wraps a message that fitted, plus a reason, so it
 * can only exceed the limit by a little; when it does, the raw item is cut down to its start rather
 * than blocking the partition on a letter Kafka will never take. A raw item that cannot be serialized
 * at all (a cycle, a BigInt) is dropped and the reason says so: the letter itself always goes out.
 */
export const MAX_DEAD_LETTER_BYTES = 900 * 1024;
const KEPT_RAW_CHARS = 64 * 1024;

type Optional<T> = { [K in keyof T]?: T[K] | undefined };

/** A DeadLetter without the fields left undefined; `at` defaults to now. */
export function buildDeadLetter(
  fields: Pick<DeadLetter, 'source' | 'reason'> &
    Optional<Omit<DeadLetter, 'source' | 'reason' | 'at'>> & { at?: string | number | Date },
): DeadLetter {
  const { at, ...rest } = fields;
  const letter: Record<string, unknown> = {
    at:
      at === undefined ? new Date().toISOString() : typeof at === 'string' ? at : new Date(at).toISOString(),
  };
  for (const [key, value] of Object.entries(rest))
    if (value !== undefined || key === 'raw') letter[key] = value;
  return letter as DeadLetter;
}

/** The JSON of a dead letter, at most `maxBytes` (default MAX_DEAD_LETTER_BYTES) where it can be. */
export function serializeDeadLetter(letter: DeadLetter, maxBytes: number = MAX_DEAD_LETTER_BYTES): string {
  let text: string;
  try {
    text = JSON.stringify(letter);
  } catch (error) {
    const name = error instanceof Error ? error.name : typeof error;
    return JSON.stringify({
      ...letter,
      reason: `${letter.reason}; the raw item could not be serialized (${name})`,
      raw: null,
    });
  }
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return text;
  const raw = typeof letter.raw === 'string' ? letter.raw : JSON.stringify(letter.raw);
  const kept = JSON.stringify({
    ...letter,
    raw: {
      truncated: true,
      originalBytes: Buffer.byteLength(raw),
      start: raw.slice(0, Math.min(KEPT_RAW_CHARS, Math.floor(maxBytes / 4))),
    },
  });
  if (Buffer.byteLength(kept) <= maxBytes) return kept;
  return JSON.stringify({ ...letter, raw: { truncated: true, originalBytes: Buffer.byteLength(raw) } });
}

/** A dead letter as a Kafka message: keyed by the given key, else by cluster, so one cluster keeps order. */
export function deadLetterMessage(
  letter: DeadLetter,
  options: { key?: Buffer | string | null; maxBytes?: number } = {},
): { key: Buffer | string | null; value: string } {
  return {
    key: options.key !== undefined ? options.key : (letter.cluster ?? null),
    value: serializeDeadLetter(letter, options.maxBytes),
  };
}

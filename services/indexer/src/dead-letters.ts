import type { DeadLetter } from '@kaudit/audit-schema';
import type { Producer } from 'kafkajs';

/**
 * Kafka refuses messages above its max.message.bytes (1 MiB by default). A dead letter wraps a message
 * that fitted, plus a reason, so it can only exceed the limit by a little; when it does, the raw item
 * is cut down to its start rather than blocking the partition on a letter Kafka will never take.
 */
export const MAX_DEAD_LETTER_BYTES = 900 * 1024;
const KEPT_RAW_CHARS = 64 * 1024;

export function serializeDeadLetter(letter: DeadLetter): string {
  const text = JSON.stringify(letter);
  if (Buffer.byteLength(text) <= MAX_DEAD_LETTER_BYTES) return text;
  const raw = typeof letter.raw === 'string' ? letter.raw : JSON.stringify(letter.raw);
  return JSON.stringify({
    ...letter,
    raw: { truncated: true, originalBytes: Buffer.byteLength(raw), start: raw.slice(0, KEPT_RAW_CHARS) },
  });
}

/** Publishes dead letters and resolves once Kafka has them (acks from all in-sync replicas). */
export function createDeadLetterPublisher(producer: Producer, topic: string) {
  return {
    async publish(letters: DeadLetter[]): Promise<void> {
      if (letters.length === 0) return;
      await producer.send({
        topic,
        acks: -1,
        messages: letters.map((letter) => ({
          key: letter.cluster ?? null,
          value: serializeDeadLetter(letter),
        })),
      });
    },
  };
}

export type DeadLetterPublisher = ReturnType<typeof createDeadLetterPublisher>;

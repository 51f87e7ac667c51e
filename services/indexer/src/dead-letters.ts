import type { DeadLetter } from '@kaudit/audit-schema';
import { deadLetterMessage } from '@kaudit/service-kit';
import type { Producer } from 'kafkajs';

/** Publishes dead letters (size-capped by service-kit) and resolves once Kafka has them (acks from all in-sync replicas). */
export function createDeadLetterPublisher(producer: Producer, topic: string) {
  return {
    async publish(letters: DeadLetter[]): Promise<void> {
      if (letters.length === 0) return;
      await producer.send({ topic, acks: -1, messages: letters.map((letter) => deadLetterMessage(letter)) });
    },
  };
}

export type DeadLetterPublisher = ReturnType<typeof createDeadLetterPublisher>;

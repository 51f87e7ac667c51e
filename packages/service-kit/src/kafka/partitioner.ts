import { randomInt } from 'node:crypto';
import type { ICustomPartitioner, PartitionerArgs } from 'kafkajs';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/**
 * Kafka's murmur2 (the Java client's Utils.murmur2, which kafkajs' DefaultPartitioner ports) in 32-bit
 * integer arithmetic. kafkajs computes it with 64-bit Long objects, a dozen allocations per key: in
 * bench:sink's profile that was 8 % of the sink. Only the low 32 bits of its products and xors reach
 * the result, so this gives the same hash for every key (partitioner.test.ts, against kafkajs' own).
 */
export function murmur2(key: Buffer | string): number {
  let bytes: Buffer;
  let length: number;
  if (typeof key === 'string') {
    // Encoded into one reused buffer: no Buffer per message, as kafkajs makes.
    length = Buffer.byteLength(key);
    if (length > scratch.length) scratch = Buffer.allocUnsafe(2 * length);
    scratch.write(key, 0, 'utf8');
    bytes = scratch;
  } else {
    bytes = key;
    length = key.length;
  }
  let h = SEED ^ length;
  const words = length >>> 2;
  for (let i = 0; i < words; i++) {
    const i4 = i * 4;
    let k = bytes[i4]! | (bytes[i4 + 1]! << 8) | (bytes[i4 + 2]! << 16) | (bytes[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  // The tail bytes, mixed in as the Java switch's fall-through does.
  if (rest === 3) h ^= bytes[tail + 2]! << 16;
  if (rest >= 2) h ^= bytes[tail + 1]! << 8;
  if (rest >= 1) h = Math.imul(h ^ bytes[tail]!, M);
  h ^= h >>> 13;
  h = Math.imul(h, M);
  return h ^ (h >>> 15);
}

let scratch = Buffer.allocUnsafe(512);

/**
 * kafkajs' DefaultPartitioner (Java-compatible: the partition Kafka's own clients pick for a key) with
 * murmur2 above: an explicit partition wins, a keyed message goes to murmur2(key) mod the partition
 * count, an unkeyed one round-robins over partitions that have a leader. Every producer of createKafka
 * uses it, so no message moves partition: the detector's state per partition depends on that.
 */
export const keyPartitioner: ICustomPartitioner = () => {
  const counters = new Map<string, number>();
  return ({ topic, partitionMetadata, message }: PartitionerArgs) => {
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    const partitions = partitionMetadata.length;
    if (message.key !== null && message.key !== undefined)
      return (murmur2(message.key) & 0x7fffffff) % partitions;
    const next = (counters.get(topic) ?? randomInt(2 ** 31)) + 1;
    counters.set(topic, next);
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    if (available.length > 0) return available[(next & 0x7fffffff) % available.length]!.partitionId;
    return (next & 0x7fffffff) % partitions;
  };
};

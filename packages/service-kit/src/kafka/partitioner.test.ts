import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { keyPartitioner, murmur2 } from './partitioner';

// kafkajs' own hash (not exported from its index): what the DefaultPartitioner takes modulo the count.
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2') as (
  key: Buffer | string,
) => number;

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const metadata = (count: number, leaderless: number[] = []): PartitionMetadata[] =>
  Array.from({ length: count }, (_, partitionId) => ({
    partitionId,
    leader: leaderless.includes(partitionId) ? -1 : 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));

describe('service-kit > kafka > partitioner', () => {
  it("gives every key the hash and partition of kafkajs' DefaultPartitioner (Java's murmur2)", () => {
    const rand = random(42);
    const alphabet = 'abcdefghijklmnopqrstuvwxyz:/-.@0123456789é漢🙂';
    const keys = [
      '',
      'a',
      'ab',
      'abc',
      'abcd',
      'prod/system:serviceaccount:kube-system:default',
      'x'.repeat(5000),
    ];
    for (let n = 0; n < 3000; n++) {
      const length = Math.floor(rand() * 90);
      keys.push(Array.from({ length }, () => alphabet[Math.floor(rand() * alphabet.length)]).join(''));
    }
    const theirs = Partitioners.DefaultPartitioner();
    const ours = keyPartitioner();
    for (const key of keys) {
      expect(murmur2(key)).toBe(kafkajsMurmur2(key));
      for (const count of [1, 3, 7, 64]) {
        const args = { topic: 't', partitionMetadata: metadata(count), message: { key, value: null } };
        expect(ours(args)).toBe(theirs(args));
      }
    }
  });

  it('an explicit partition wins; unkeyed messages go round the partitions that have a leader', () => {
    const ours = keyPartitioner();
    const partitionMetadata = metadata(4, [1]);
    expect(ours({ topic: 't', partitionMetadata, message: { key: 'k', value: null, partition: 3 } })).toBe(3);
    const picked = new Set(
      Array.from({ length: 30 }, () => ours({ topic: 't', partitionMetadata, message: { value: null } })),
    );
    expect([...picked].sort()).toEqual([0, 2, 3]);
  });

  it('hashes a string and its UTF-8 bytes alike, long keys included', () => {
    for (const key of ['prod/alice', 'ünïcødé/键', 'y'.repeat(10_000)])
      expect(murmur2(key)).toBe(murmur2(Buffer.from(key, 'utf8')));
  });
});

import type { Kafka } from 'kafkajs';

export interface PartitionEnd {
  partition: number;
  high: string;
  low: string;
}

export interface PartitionCommit {
  partition: number;
  /** "-1" when the group has committed nothing on the partition. */
  offset: string;
}

/**
 * Messages each partition still has to go through: high watermark minus the committed offset, or
 * minus the low watermark when the group has committed nothing there yet (it starts from the
 * beginning). Never negative: retention may have deleted past an old commit.
 */
export function partitionLags(
  ends: PartitionEnd[],
  commits: PartitionCommit[],
): Array<{ partition: number; lag: number }> {
  const committed = new Map(commits.map((c) => [c.partition, BigInt(c.offset)]));
  return ends
    .map((end) => {
      const high = BigInt(end.high);
      const low = BigInt(end.low);
      const done = committed.get(end.partition) ?? -1n;
      const from = done < 0n || done < low ? low : done;
      return { partition: end.partition, lag: Number(high > from ? high - from : 0n) };
    })
    .sort((a, b) => a.partition - b.partition);
}

/**
 * Sum of what a group still has to read of one topic, each partition's lag as partitionLags counts it
 * (a commit older than the low watermark counts from the low watermark: retention deleted the rest).
 */
export async function consumerLag(kafka: Kafka, groupId: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [ends, committed] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId, topics: [topic] }),
    ]);
    const commits = committed.find((c) => c.topic === topic)?.partitions ?? [];
    return partitionLags(ends, commits).reduce((sum, { lag }) => sum + lag, 0);
  } finally {
    await admin.disconnect();
  }
}

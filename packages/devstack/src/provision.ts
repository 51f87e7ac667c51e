import type { TopicSpec } from '@kaudit/service-kit';
import type { PipelineTopics } from './pipeline';

/**
 * Every topic the four services use, created once before any of them starts (issue 11: four services
 * creating the same new topics at once on a freshly formatted broker failed their start-up). Settings
 * match what each service would create itself (detector.ts ensureStateTopic, the alerter's
 * delivered-store.ts), since a service leaves an existing topic as it is: the detector's state topic has
 * the events topic's partition count (state of events partition p lives in state partition p).
 */
/** Partitions of the alerts topic (the chaos run's drain counts one commit marker on each). */
export const ALERTS_PARTITIONS = 3;

export function pipelineTopicSpecs(topics: PipelineTopics): TopicSpec[] {
  const eventsPartitions = 3;
  return [
    { topic: topics.events, numPartitions: eventsPartitions },
    { topic: topics.alerts, numPartitions: ALERTS_PARTITIONS },
    { topic: topics.dlq, numPartitions: 1 },
    {
      topic: topics.detectorState,
      numPartitions: eventsPartitions,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'max.message.bytes', value: String(8 * 1024 * 1024) },
      ],
    },
    {
      topic: topics.alerterDelivered,
      numPartitions: 3,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact,delete' },
        // ALERTER_DEDUP_RETENTION's default, 14 days.
        { name: 'retention.ms', value: String(14 * 86_400_000) },
      ],
    },
  ];
}

import { z } from 'zod';
import { AuditEventSchema } from './audit-event';

/** The value of Envelope.copy: a chain step's copy, routed to the partitions it concerns. */
export const CHAIN_STEP_COPY = 'chain-step';

/** Default topic names: operators script against these, so they are contracts. */
export const DEFAULT_TOPICS = {
  events: 'k8s-audit.events',
  alerts: 'k8s-audit.alerts',
  dlq: 'k8s-audit.dlq',
} as const;

/** Annotation the sink sets on every event it redacted; value = comma-separated JSON paths removed. */
export const REDACTED_ANNOTATION = 'kaudit.dev/redacted';

/**
 * Annotation the sink sets on an event too large for one Kafka message, whose request/response bodies
 * it dropped; value = the fields dropped, comma-separated (`requestObject`, `responseObject`).
 */
export const TRUNCATED_ANNOTATION = 'kaudit.dev/truncated';

/**
 * The value of every message on the events topic. `copy` marks a copy of a chain step (chain-copies.ts):
 * the sink puts it on the partitions of the identities the step may empower, the detector records it as
 * a step only, and the indexer skips it (the original is indexed once, on its own partition).
 */
export const EnvelopeSchema = z.object({
  cluster: z.string().min(1),
  receivedAt: z.iso.datetime({ offset: true }),
  event: AuditEventSchema,
  copy: z.literal(CHAIN_STEP_COPY).optional(),
});
export type Envelope = z.infer<typeof EnvelopeSchema>;

/** The value of every message on the dead-letter topic, whoever wrote it. */
export const DeadLetterSchema = z.object({
  source: z.enum(['sink', 'detector', 'indexer', 'alerter']),
  reason: z.string(),
  at: z.iso.datetime({ offset: true }),
  cluster: z.string().optional(),
  /** Where the failed record came from, for consumers. */
  topic: z.string().optional(),
  partition: z.number().int().optional(),
  offset: z.string().optional(),
  /** Destination for the alerter, index for the indexer. */
  target: z.string().optional(),
  /** The raw item as received (already redacted where it was an audit event). */
  raw: z.unknown(),
});
export type DeadLetter = z.infer<typeof DeadLetterSchema>;

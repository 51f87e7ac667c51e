import type { AuditEvent } from './audit-event';

/** The identity a request acted as: the impersonated user when present, else the authenticated one. */
export function effectiveUsername(event: Pick<AuditEvent, 'user' | 'impersonatedUser'>): string {
  return event.impersonatedUser?.username ?? event.user.username;
}

/**
 * Kafka message key shared by the sink (producer) and the detector (state partitioning): one identity's
 * events of one cluster keep their order and land on one partition.
 */
export function partitionKey(cluster: string, event: Pick<AuditEvent, 'user' | 'impersonatedUser'>): string {
  return `${cluster}/${effectiveUsername(event)}`;
}

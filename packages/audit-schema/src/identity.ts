import { createHash } from 'node:crypto';
import type { AuditEvent } from './audit-event';

/** The identity a request acted as: the impersonated user when present, else the authenticated one. */
export function effectiveUsername(event: Pick<AuditEvent, 'user' | 'impersonatedUser'>): string {
  return event.impersonatedUser?.username ?? event.user.username;
}

/** Longer key parts are replaced by their digest (real usernames and cluster names are far shorter). */
export const MAX_KEY_PART_CHARS = 128;

/**
 * Kafka message key shared by the sink (producer) and the detector (state partitioning): one identity's
 * events of one cluster keep their order and land on one partition.
 *
 * Bounded: a part longer than MAX_KEY_PART_CHARS becomes `sha256:<hex>` of itself, so the key is at most
 * a few hundred bytes whatever the input. The same identity always gets the same key (ordering and
 * partitioning hold), and no single event can make the partitioner's hash, the broker's key index or the
 * detector's state keys grow with a 300,000-character username.
 */
export function partitionKey(cluster: string, event: Pick<AuditEvent, 'user' | 'impersonatedUser'>): string {
  return `${boundedKeyPart(cluster)}/${boundedKeyPart(effectiveUsername(event))}`;
}

function boundedKeyPart(part: string): string {
  if (part.length <= MAX_KEY_PART_CHARS) return part;
  return `sha256:${createHash('sha256').update(part, 'utf8').digest('hex')}`;
}

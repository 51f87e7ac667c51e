import { hash } from 'node:crypto';
import type { AuditEvent } from '@kaudit/audit-schema';
import { type AddressSet, type Identity, identityOf, sourceIPOf } from './identity';

export const SECRET_READ_VERBS = ['get', 'list', 'watch'] as const;

/**
 * One request, reduced to what the rules and baselines read. Small on purpose: observations wait in the
 * reordering buffer, which is part of the persisted state.
 */
export interface Observation {
  /** requestReceivedTimestamp in ms since the epoch: identical in every stage of one request. */
  t: number;
  auditID: string;
  /** Identity of the request: auditID + authenticated user + requestURI (auditID alone is client-settable). */
  requestKey: string;
  stageRank: number;
  identity: Identity;
  verb: string;
  sourceIP?: string;
  userAgent?: string;
  /** Secret reads only. */
  secret?: SecretRead;
  /** HTTP status; undefined when the stage carries none. */
  code?: number;
  /** Arrived behind the watermark by more than eventTime.dedupRetention: learned from, never judged. */
  tooLate?: true;
}

export interface SecretRead {
  namespace?: string;
  name?: string;
  /** list/watch without a namespace (or without a name, for get... which the API server rejects). */
  clusterWide: boolean;
  outcome: 'allowed' | 'denied' | 'unauthenticated' | 'failed';
}

const STAGE_RANK: Record<string, number> = { ResponseStarted: 1, ResponseComplete: 2, Panic: 3 };

/** Secrets in the core group, read with get, list or watch. */
export function isSecretRead(event: AuditEvent): boolean {
  const ref = event.objectRef;
  return (
    ref?.resource === 'secrets' &&
    !ref.apiGroup &&
    !ref.subresource &&
    (SECRET_READ_VERBS as readonly string[]).includes(event.verb)
  );
}

/**
 * Reduces an event to an observation, or undefined for stages that do not count: RequestReceived carries
 * no outcome yet, and the other stages of the same request are dropped later by requestKey. A watch counts
 * at ResponseStarted (it may complete an hour later); when the log omits that stage, ResponseComplete counts.
 */
export function observe(event: AuditEvent, trustedProxies: AddressSet): Observation | undefined {
  const stageRank = STAGE_RANK[event.stage];
  if (stageRank === undefined) return undefined;
  const t = Date.parse(event.requestReceivedTimestamp);
  if (Number.isNaN(t)) return undefined;
  const code = event.responseStatus?.code;
  const observation: Observation = {
    t,
    auditID: event.auditID,
    requestKey: requestKey(event),
    stageRank,
    identity: identityOf(event),
    verb: event.verb,
  };
  const sourceIP = sourceIPOf(event.sourceIPs, trustedProxies);
  if (sourceIP !== undefined) observation.sourceIP = sourceIP;
  if (event.userAgent !== undefined) observation.userAgent = event.userAgent;
  if (code !== undefined) observation.code = code;
  if (isSecretRead(event)) {
    const namespace = event.objectRef?.namespace;
    const name = event.objectRef?.name;
    const read: SecretRead = { clusterWide: !namespace, outcome: outcomeOf(code) };
    if (namespace) read.namespace = namespace;
    if (name) read.name = name;
    observation.secret = read;
  }
  return observation;
}

function outcomeOf(code: number | undefined): SecretRead['outcome'] {
  if (code === undefined || code < 400) return 'allowed';
  if (code === 403) return 'denied';
  if (code === 401) return 'unauthenticated';
  return 'failed';
}

/** Whether the request succeeded, so that what it shows (address, agent, hour) may be learned. */
export function succeeded(observation: Observation): boolean {
  return observation.code === undefined || observation.code < 400;
}

function requestKey(event: AuditEvent): string {
  // One-shot hash: a third of createHash().update().digest()'s cost, same digest.
  return hash(
    'sha256',
    `${event.auditID}\u0000${event.user.username}\u0000${event.requestURI}`,
    'base64url',
  ).slice(0, 22);
}

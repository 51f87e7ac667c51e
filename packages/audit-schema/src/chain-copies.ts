import type { AuditEvent } from './audit-event';
import { effectiveUsername, partitionKey } from './identity';

/**
 * Where copies of an event go so that the detector can tell a privilege-escalation chain across
 * identities (issue 15). Events are keyed by identity (partitionKey), and each of the detector's engines
 * sees one partition; a chain whose steps are one identity's and whose Secret read is another's — a
 * token minted for a service account, a binding that names another user or group, an identity that is
 * impersonated — would otherwise be found or not depending on how two names hash. So the sink, where
 * events enter, puts a copy of each step where the later read will be:
 *
 * - a TokenRequest (`create serviceaccounts/token`) for another account: one copy keyed by that account;
 * - an RBAC write (create, update, patch of a Role, ClusterRole or a binding): a copy on every partition,
 *   since whoever the binding or role empowers (a group, a binding's subjects not logged at Metadata
 *   level) may be keyed anywhere.
 *
 * The copy enters its partition with the batch it came in, so its place among that partition's events is
 * fixed by the offsets: a replay links the same steps. Only the shape decides here, no policy (the
 * detector applies it: ignoreActors, powerfulRoles); both kinds of request are rare next to the reads.
 * Pure: the sink calls it for every accepted event.
 */
export interface ChainCopies {
  /** Partition keys to put a keyed copy on (a TokenRequest's account). */
  keys: string[];
  /** A copy on every partition of the events topic. */
  everyPartition: boolean;
}

const NONE: ChainCopies = { keys: [], everyPartition: false };
/**
 * The RBAC writes that are privilege steps: what the sink copies to every partition, and what the
 * detector's chain rule (detection chain.ts) records as a step — one definition, so the two agree.
 */
export const RBAC_RESOURCES: ReadonlySet<string> = new Set([
  'roles',
  'clusterroles',
  'rolebindings',
  'clusterrolebindings',
]);
export const RBAC_WRITE_VERBS: ReadonlySet<string> = new Set(['create', 'update', 'patch']);

export function chainCopies(cluster: string, event: AuditEvent): ChainCopies {
  const ref = event.objectRef;
  if (!ref?.resource || event.stage === 'RequestReceived') return NONE;
  const code = event.responseStatus?.code;
  if (code !== undefined && code >= 400) return NONE;
  if (
    ref.resource === 'serviceaccounts' &&
    ref.subresource === 'token' &&
    event.verb === 'create' &&
    ref.namespace &&
    ref.name
  ) {
    const account = `system:serviceaccount:${ref.namespace}:${ref.name}`;
    if (account === effectiveUsername(event)) return NONE;
    return { keys: [partitionKey(cluster, { user: { username: account } })], everyPartition: false };
  }
  if (
    RBAC_RESOURCES.has(ref.resource) &&
    ref.apiGroup === 'rbac.authorization.k8s.io' &&
    !ref.subresource &&
    RBAC_WRITE_VERBS.has(event.verb)
  )
    return { keys: [], everyPartition: true };
  return NONE;
}

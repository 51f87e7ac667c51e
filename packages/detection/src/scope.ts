import { hash } from 'node:crypto';
import type { AuditEvent } from '@kaudit/audit-schema';
import type { CsrSubject } from './csr-subject';
import { type AddressSet, type Identity, identityOf, sourceIPOf } from './identity';
import { requestFacts } from './request-facts';

export const SECRET_READ_VERBS = ['get', 'list', 'watch'] as const;

/**
 * One request, reduced to what the rules and baselines read. Small on purpose: observations wait in the
 * reordering buffer, which is part of the persisted state.
 */
export interface Observation {
  /** requestReceivedTimestamp in ms since the epoch: identical in every stage of one request. */
  t: number;
  auditID: string;
  /**
   * Identity of the request beyond auditID (which the client may set): for a secret read, a digest of
   * auditID + authenticated user + requestURI, remembered in `seen` to drop the request's other stages;
   * for other requests (never deduplicated) the authenticated user and requestURI, which only order ties.
   */
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
  /**
   * What the request rules (credential-minted, privilege-escalation-then-secrets, token-provenance,
   * anonymous-access) read, kept only for the requests they look at so the buffered state stays small.
   */
  facts?: RequestFacts;
}

/** The parts of a request beyond the secret read that the request rules judge (request-facts.ts). */
export interface RequestFacts {
  /** objectRef, for RBAC, TokenRequest, CSR and Secret-create requests. */
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** Non-resource path (anonymous requests only), without the query. */
  path?: string;
  /** From requestObject when the audit level carries it (Request or RequestResponse). */
  roleRef?: string;
  /** Subjects of a binding, as usernames (system:serviceaccount:ns:name, users, `group:<name>`). */
  subjects?: string[];
  /** A Role/ClusterRole body grants secrets, `*`, or escalate/bind/impersonate. */
  powerfulRules?: boolean;
  /** A Secret created with this type (kubernetes.io/service-account-token: a legacy token). */
  secretType?: string;
  /** A CSR's spec.username (who asked for it; the API server sets it), when the body is logged. */
  csrRequester?: string;
  /** A CSR's spec.signerName, when the body is logged. */
  csrSigner?: string;
  /** A CSR's subject (CN, O) from spec.request, when the body is logged (csr-subject.ts). */
  csrSubject?: CsrSubject;
  /** The decision an approval request makes (its status.conditions), when the body is logged. */
  csrDecision?: 'Approved' | 'Denied';
  /** user.extra of a service-account token: its credential id (JTI), the pod and node it is bound to. */
  credentialId?: string;
  /** The pod's uid (its name when the uid is not recorded). */
  pod?: string;
  podName?: string;
  node?: string;
  /** annotation authentication.k8s.io/legacy-token: a Secret-based service-account token was used. */
  legacyToken?: string;
  /** annotation authorization.k8s.io/reason of an allowed request: `ClusterRoleBinding/name`, `RoleBinding/ns/name`. */
  authorizedBy?: string;
  /** The role of that binding: `ClusterRole/name`, `Role/ns/name`. */
  authorizedRole?: string;
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
  const secret = isSecretRead(event);
  let read: SecretRead | undefined;
  if (secret) {
    const namespace = event.objectRef?.namespace;
    const name = event.objectRef?.name;
    read = { clusterWide: !namespace, outcome: outcomeOf(code) };
    if (namespace) read.namespace = namespace;
    if (name) read.name = name;
  }
  // Every field always present (undefined when absent): one hidden class for every observation, so
  // the engine's reads of them stay monomorphic. JSON (the changelog) leaves the undefined ones out.
  const observation: Observation = {
    t,
    auditID: event.auditID,
    // The digest only where it is remembered: a SHA-256 per request was a tenth of the engine's time.
    requestKey: secret ? requestKey(event) : `${event.user.username}\u0000${event.requestURI}`,
    stageRank,
    identity: identityOf(event),
    verb: event.verb,
    sourceIP: sourceIPOf(event.sourceIPs, trustedProxies),
    userAgent: event.userAgent,
    secret: read,
    code,
    tooLate: undefined,
    facts: undefined,
  };
  observation.facts = requestFacts(event, observation);
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

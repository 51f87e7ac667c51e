import type { AuditEvent } from '@kaudit/audit-schema';
import { csrSubject } from './csr-subject';
import type { Observation, RequestFacts } from './scope';

/**
 * The facts of a request that the request rules judge, read once when the event is observed. Most
 * requests carry none (a pod list by a controller): the function returns undefined after a few
 * comparisons, so the buffered observation of an ordinary request is as small as before.
 *
 * At the recommended audit level (Metadata) a binding's roleRef and subjects, a role's rules and a
 * Secret's type are not logged; they are read from requestObject when a policy logs RBAC at Request
 * level, and otherwise the rules work from what Metadata shows (the object's name, the authorizing
 * binding named in `authorization.k8s.io/reason`). docs/detection.md lists what each level shows.
 */

const RBAC_RESOURCES = new Set(['rolebindings', 'clusterrolebindings', 'roles', 'clusterroles']);
const WRITE_VERBS = new Set(['create', 'update', 'patch']);
const POWERFUL_VERBS = new Set(['escalate', 'bind', 'impersonate', '*']);
const CREDENTIAL_ID = 'authentication.kubernetes.io/credential-id';
const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';
const NODE_NAME = 'authentication.kubernetes.io/node-name';
const REASON = /allowed by (ClusterRoleBinding|RoleBinding) "([^"]+)" of (ClusterRole|Role) "([^"]+)"/;

export function requestFacts(event: AuditEvent, observation: Observation): RequestFacts | undefined {
  let facts: RequestFacts | undefined;
  const { identity } = observation;
  const ref = event.objectRef;
  if (identity.kind === 'anonymous') {
    facts = {};
    if (ref?.resource) copyRef(facts, ref);
    else facts.path = event.requestURI.split('?', 1)[0]!;
  } else if (ref?.resource && WRITE_VERBS.has(event.verb)) {
    const resource = ref.resource;
    const interesting =
      (resource === 'serviceaccounts' && ref.subresource === 'token') ||
      resource === 'certificatesigningrequests' ||
      (resource === 'secrets' && !ref.subresource && event.verb === 'create') ||
      (RBAC_RESOURCES.has(resource) && ref.apiGroup === 'rbac.authorization.k8s.io');
    if (interesting) {
      facts = {};
      copyRef(facts, ref);
      readBody(facts, event.requestObject);
    }
  }
  const extra = event.user.extra;
  if (extra && identity.kind === 'serviceaccount') {
    const credentialId = extra[CREDENTIAL_ID]?.[0];
    const pod = extra[POD_NAME]?.[0];
    if (credentialId || pod) {
      facts ??= {};
      if (credentialId) facts.credentialId = credentialId;
      if (pod) {
        const uid = extra[POD_UID]?.[0];
        // Keyed by uid when known (a StatefulSet's next pod has the same name and a new address).
        facts.pod = uid ?? pod;
        if (uid) facts.podName = pod;
      }
      const node = extra[NODE_NAME]?.[0];
      if (node) facts.node = node;
    }
  }
  const annotations = event.annotations;
  if (annotations) {
    const legacy = annotations['authentication.k8s.io/legacy-token'];
    if (legacy) {
      facts ??= {};
      facts.legacyToken = legacy;
    }
    if (observation.secret) {
      const reason = annotations['authorization.k8s.io/reason'];
      const match = reason ? REASON.exec(reason) : null;
      if (match) {
        facts ??= {};
        // The API server names a RoleBinding "name/namespace"; kaudit's targets are Kind/namespace/name.
        const [name, namespace] = match[2]!.split('/', 2) as [string, string | undefined];
        const scope = match[1] === 'RoleBinding' && namespace ? `${namespace}/` : '';
        facts.authorizedBy = `${match[1]}/${scope}${name}`;
        // A RoleBinding's Role is in the binding's namespace.
        facts.authorizedRole = `${match[3]}/${match[3] === 'Role' ? scope : ''}${match[4]}`;
      }
    }
  }
  return facts;
}

function copyRef(facts: RequestFacts, ref: NonNullable<AuditEvent['objectRef']>): void {
  if (ref.resource) facts.resource = ref.resource;
  if (ref.subresource) facts.subresource = ref.subresource;
  if (ref.namespace) facts.namespace = ref.namespace;
  if (ref.name) facts.name = ref.name;
}

type Body = Record<string, unknown>;
const isBody = (value: unknown): value is Body => typeof value === 'object' && value !== null;
const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

function readBody(facts: RequestFacts, body: unknown): void {
  if (!isBody(body)) return;
  const roleRef = body.roleRef;
  if (isBody(roleRef) && typeof roleRef.name === 'string') {
    facts.roleRef = `${roleRef.kind === 'Role' ? 'Role' : 'ClusterRole'}/${roleRef.name}`;
  }
  if (Array.isArray(body.subjects)) {
    facts.subjects = body.subjects.filter(isBody).map((subject) => {
      const name = String(subject.name);
      if (subject.kind === 'ServiceAccount')
        return `system:serviceaccount:${String(subject.namespace)}:${name}`;
      return subject.kind === 'Group' ? `group:${name}` : name;
    });
  }
  if (Array.isArray(body.rules)) {
    facts.powerfulRules = body.rules.filter(isBody).some((rule) => {
      const resources = strings(rule.resources);
      return (
        resources.includes('secrets') ||
        resources.includes('*') ||
        strings(rule.verbs).some((verb) => POWERFUL_VERBS.has(verb))
      );
    });
  }
  if (typeof body.type === 'string' && facts.resource === 'secrets') facts.secretType = body.type;
  const spec = body.spec;
  if (isBody(spec) && facts.resource === 'certificatesigningrequests') {
    if (typeof spec.username === 'string') facts.csrRequester = spec.username;
    if (typeof spec.signerName === 'string') facts.csrSigner = spec.signerName;
    const subject = csrSubject(spec.request);
    if (subject) facts.csrSubject = subject;
  }
  const status = body.status;
  if (isBody(status) && facts.resource === 'certificatesigningrequests' && Array.isArray(status.conditions)) {
    // An approval request carries the decision it makes (kubectl certificate approve / deny).
    const types = status.conditions.filter(isBody).map((condition) => condition.type);
    if (types.includes('Denied')) facts.csrDecision = 'Denied';
    else if (types.includes('Approved')) facts.csrDecision = 'Approved';
  }
}

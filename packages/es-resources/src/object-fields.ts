/**
 * The sub-fields of `kubernetes.audit.requestObject` / `.responseObject` that the template maps
 * (policies/elasticsearch/component-templates/kaudit-audit-mappings.json; a unit test keeps the two
 * in sync). They are the fields Elastic's prebuilt Kubernetes rules query. Everything else of these
 * objects is kept in _source only.
 *
 * Request and response bodies are arbitrary (any CRD): one whose `spec.type` is an object would be
 * rejected by Elasticsearch and the event lost from the index. fitsObjectMapping tells the mapper to
 * keep such a body unindexed instead, whole, so the evidence survives.
 */
export const OBJECT_FIELDS: Record<string, 'keyword' | 'boolean'> = {
  kind: 'keyword',
  'roleRef.kind': 'keyword',
  'roleRef.name': 'keyword',
  'rules.apiGroups': 'keyword',
  'rules.resources': 'keyword',
  'rules.verbs': 'keyword',
  'rules.resourceNames': 'keyword',
  'subjects.kind': 'keyword',
  'subjects.name': 'keyword',
  'subjects.namespace': 'keyword',
  'spec.type': 'keyword',
  'spec.hostNetwork': 'boolean',
  'spec.hostPID': 'boolean',
  'spec.hostIPC': 'boolean',
  'spec.serviceAccountName': 'keyword',
  'spec.containers.image': 'keyword',
  'spec.containers.securityContext.privileged': 'boolean',
  'spec.containers.securityContext.allowPrivilegeEscalation': 'boolean',
  'spec.containers.securityContext.runAsUser': 'keyword',
  'spec.containers.securityContext.capabilities.add': 'keyword',
  'spec.containers.volumeMounts.mountPath': 'keyword',
  'spec.volumes.hostPath.path': 'keyword',
};

/** OBJECT_FIELDS split into their steps once, not per document. */
const FIELD_PATHS = Object.entries(OBJECT_FIELDS).map(([path, type]) => ({ steps: path.split('.'), type }));

/** True when indexing `body` under the mapped object cannot conflict with OBJECT_FIELDS. */
export function fitsObjectMapping(body: unknown): boolean {
  if (body === undefined || body === null) return true;
  if (typeof body !== 'object' || Array.isArray(body)) return false;
  return FIELD_PATHS.every(({ steps, type }) => fits(body, steps, 0, type));
}

function fits(value: unknown, steps: string[], depth: number, type: 'keyword' | 'boolean'): boolean {
  if (value === undefined || value === null) return true;
  // Elasticsearch indexes each element of an array as if it stood alone.
  if (Array.isArray(value)) return value.every((item) => fits(item, steps, depth, type));
  if (depth === steps.length) return fitsLeaf(value, type);
  if (typeof value !== 'object') return false;
  return fits((value as Record<string, unknown>)[steps[depth]!], steps, depth + 1, type);
}

function fitsLeaf(value: unknown, type: 'keyword' | 'boolean'): boolean {
  if (type === 'boolean') return typeof value === 'boolean' || value === 'true' || value === 'false';
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

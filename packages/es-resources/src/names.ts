import { AppError } from '@kaudit/common';
/**
 * Data stream names in Elastic's scheme, `<type>-<dataset>-<namespace>`: operators, Kibana data views
 * and Elastic's prebuilt rules script against them, so they are contracts (ADR 0008).
 *
 * Audit events use the Elastic Agent integration's dataset, `kubernetes.audit_logs`, so the prebuilt
 * Kubernetes rules (index `logs-kubernetes.audit_logs-*`, `FROM logs-kubernetes.audit_logs-*`,
 * `data_stream.dataset: "kubernetes.audit_logs"`) find them unchanged. Their namespace always starts
 * with `kaudit` (eventsNamespace), so kaudit's template matches only kaudit's streams and the
 * integration's template (`logs-kubernetes.audit_logs-*`, priority 200) keeps its own.
 * Findings keep their own dataset and the operator's namespace as before.
 */
export const DATASETS = { events: 'kubernetes.audit_logs', findings: 'kaudit.findings' } as const;
export type DatasetKind = keyof typeof DATASETS;

/** Where audit events went before ADR 0008 (`logs-kaudit.audit-<namespace>`); still read and migrated. */
export const LEGACY_EVENTS_DATASET = 'kaudit.audit';

export const DEFAULT_NAMESPACE = 'default';

/** The events' namespace prefix: what keeps kaudit's streams apart from Elastic Agent's. */
export const EVENTS_NAMESPACE_PREFIX = 'kaudit';

/**
 * Elastic's naming rules for the namespace part: lowercase, no `-` (it separates the parts of the
 * name), none of `\ / * ? " < > | , # :` or spaces, at most 100 bytes.
 */
export function namespaceProblem(namespace: string): string | undefined {
  if (namespace.length === 0) return 'must not be empty';
  // The events stream's namespace is this one with a prefix (eventsNamespace): it must fit too.
  if (Buffer.byteLength(namespace) > 100 - EVENTS_NAMESPACE_PREFIX.length - 1)
    return 'must be at most 93 bytes';
  if (namespace !== namespace.toLowerCase()) return 'must be lowercase';
  if (/[-\\/*?"<>|,#:\s]/.test(namespace)) return 'must not contain - \\ / * ? " < > | , # : or spaces';
  return undefined;
}

/**
 * The namespace of the events stream for ES_DATA_STREAM_NAMESPACE `namespace`: `kaudit` for the
 * default, `kaudit_<namespace>` otherwise (logs-kubernetes.audit_logs-kaudit, ...-kaudit_prod).
 */
export function eventsNamespace(namespace: string = DEFAULT_NAMESPACE): string {
  return namespace === DEFAULT_NAMESPACE
    ? EVENTS_NAMESPACE_PREFIX
    : `${EVENTS_NAMESPACE_PREFIX}_${namespace}`;
}

/** The data_stream.namespace a document of `kind` carries for ES_DATA_STREAM_NAMESPACE `namespace`. */
export function streamNamespace(kind: DatasetKind, namespace: string = DEFAULT_NAMESPACE): string {
  return kind === 'events' ? eventsNamespace(namespace) : namespace;
}

function checked(namespace: string): string {
  const problem = namespaceProblem(namespace);
  if (problem)
    throw new AppError('KAUDIT_ERR_CONFIG', `data stream namespace ${JSON.stringify(namespace)} ${problem}`);
  return namespace;
}

export function dataStreamName(kind: DatasetKind, namespace: string = DEFAULT_NAMESPACE): string {
  return `logs-${DATASETS[kind]}-${streamNamespace(kind, checked(namespace))}`;
}

/** Both data streams of one namespace. */
export function dataStreamNames(namespace: string = DEFAULT_NAMESPACE): Record<DatasetKind, string> {
  return { events: dataStreamName('events', namespace), findings: dataStreamName('findings', namespace) };
}

/** The stream audit events of `namespace` were written to before ADR 0008. */
export function legacyEventsStreamName(namespace: string = DEFAULT_NAMESPACE): string {
  return `logs-${LEGACY_EVENTS_DATASET}-${checked(namespace)}`;
}

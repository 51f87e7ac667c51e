import { AppError } from '@kaudit/common';
/**
 * Data stream names in Elastic's scheme, `<type>-<dataset>-<namespace>`: operators and Kibana data
 * views script against them, so they are contracts.
 */
export const DATASETS = { events: 'kaudit.audit', findings: 'kaudit.findings' } as const;
export type DatasetKind = keyof typeof DATASETS;

export const DEFAULT_NAMESPACE = 'default';

/**
 * Elastic's naming rules for the namespace part: lowercase, no `-` (it separates the parts of the
 * name), none of `\ / * ? " < > | , # :` or spaces, at most 100 bytes.
 */
export function namespaceProblem(namespace: string): string | undefined {
  if (namespace.length === 0) return 'must not be empty';
  if (Buffer.byteLength(namespace) > 100) return 'must be at most 100 bytes';
  if (namespace !== namespace.toLowerCase()) return 'must be lowercase';
  if (/[-\\/*?"<>|,#:\s]/.test(namespace)) return 'must not contain - \\ / * ? " < > | , # : or spaces';
  return undefined;
}

export function dataStreamName(kind: DatasetKind, namespace: string = DEFAULT_NAMESPACE): string {
  const problem = namespaceProblem(namespace);
  if (problem)
    throw new AppError('KAUDIT_ERR_CONFIG', `data stream namespace ${JSON.stringify(namespace)} ${problem}`);
  return `logs-${DATASETS[kind]}-${namespace}`;
}

/** Both data streams of one namespace. */
export function dataStreamNames(namespace: string = DEFAULT_NAMESPACE): Record<DatasetKind, string> {
  return { events: dataStreamName('events', namespace), findings: dataStreamName('findings', namespace) };
}

import { type Client, errors } from '@elastic/elasticsearch';
import { AppError } from '@kaudit/common';
import { DEFAULT_NAMESPACE, dataStreamNames } from './names';
import { DEFAULT_RETENTION, defaultPoliciesDir, loadResources, type ResourceOptions } from './resources';
import { isMissingApi, streamLifecycleRequests } from './stream-lifecycle';

/** The part of a pino logger applyResources uses. */
export interface ApplyLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

export interface ApplyOptions extends ResourceOptions {
  policiesDir?: string;
  /** Data stream namespace whose streams are created when missing. */
  namespace?: string;
  logger?: ApplyLogger;
}

export type DataStreamOutcome = 'existed' | 'created' | 'created-by-first-document';

export interface ApplyResult {
  componentTemplates: string[];
  indexTemplates: string[];
  /** 'off' when not requested, 'skipped' when the cluster has no ILM API. */
  ilm: 'off' | 'applied' | 'skipped';
  retention: string;
  dataStreams: Array<{ name: string; outcome: DataStreamOutcome }>;
  /**
   * Whether the retention (or the switch to ILM) reached the data streams themselves: 'unsupported'
   * when the cluster has no data stream lifecycle API, so only streams created later get it.
   */
  streamLifecycle: 'updated' | 'unsupported';
}

const silent: ApplyLogger = { info: () => {}, warn: () => {} };

/**
 * Puts the component and index templates (and the ILM policy when asked), creates the data streams
 * of `namespace` when missing, and sets their lifecycle (or ILM policy) directly, since a template's
 * lifecycle reaches a data stream only when the stream is created. Idempotent: every call PUTs the
 * same definitions, and a data stream that exists (or appears concurrently) is kept.
 */
export async function applyResources(client: Client, options: ApplyOptions = {}): Promise<ApplyResult> {
  const logger = options.logger ?? silent;
  const dir = options.policiesDir ?? defaultPoliciesDir();
  const retention = options.retention ?? DEFAULT_RETENTION;
  let resources = loadResources(dir, options);
  let ilm: ApplyResult['ilm'] = options.ilm ? 'applied' : 'off';

  if (options.ilm) {
    for (const policy of resources.ilmPolicies) {
      try {
        await put(client, `/_ilm/policy/${encodeURIComponent(policy.name)}`, policy.body);
        logger.info({ policy: policy.name }, 'ILM policy applied');
      } catch (error) {
        const status = statusOf(error);
        if (status !== 400 && status !== 404 && status !== 405) throw error;
        ilm = 'skipped';
        logger.warn(
          { policy: policy.name, status, reason: reasonOf(error), retention },
          'ILM policy skipped: the cluster has no usable ILM API; retention stays with the data stream lifecycle',
        );
        resources = loadResources(dir, { ...options, ilm: false });
        break;
      }
    }
  }

  for (const template of resources.componentTemplates) {
    await put(client, `/_component_template/${encodeURIComponent(template.name)}`, template.body);
  }
  for (const template of resources.indexTemplates) {
    await put(client, `/_index_template/${encodeURIComponent(template.name)}`, template.body);
  }
  logger.info(
    {
      componentTemplates: resources.componentTemplates.map((t) => t.name),
      indexTemplates: resources.indexTemplates.map((t) => t.name),
      retention:
        ilm === 'applied' ? `ILM policy ${resources.ilmPolicies.map((p) => p.name).join(',')}` : retention,
    },
    'Elasticsearch templates applied',
  );

  const dataStreams: ApplyResult['dataStreams'] = [];
  for (const name of Object.values(dataStreamNames(options.namespace ?? DEFAULT_NAMESPACE))) {
    const outcome = await ensureDataStream(client, name);
    dataStreams.push({ name, outcome });
    if (outcome !== 'existed') logger.info({ dataStream: name, outcome }, 'data stream created');
  }
  const streamLifecycle = await updateStreamLifecycles(
    client,
    dataStreams.map((d) => d.name),
    { retention, ilm: ilm === 'applied' },
    logger,
  );
  return {
    componentTemplates: resources.componentTemplates.map((t) => t.name),
    indexTemplates: resources.indexTemplates.map((t) => t.name),
    ilm,
    retention,
    dataStreams,
    streamLifecycle,
  };
}

async function updateStreamLifecycles(
  client: Client,
  names: string[],
  options: { retention: string; ilm: boolean },
  logger: ApplyLogger,
): Promise<ApplyResult['streamLifecycle']> {
  for (const name of names) {
    for (const request of streamLifecycleRequests(name, options)) {
      try {
        await client.transport.request({ method: request.method, path: request.path, body: request.body });
      } catch (error) {
        if (!isMissingApi(error)) throw error;
        // One cluster, one answer: no point asking for the other streams.
        logger.warn(
          { dataStreams: names, request: `${request.method} ${request.path}`, reason: reasonOf(error) },
          'existing data streams keep their lifecycle: the cluster has no API to change it; only streams created from now on follow the templates',
        );
        return 'unsupported';
      }
    }
  }
  logger.info(
    { dataStreams: names, retention: options.ilm ? 'ILM policy' : options.retention },
    'data stream lifecycle applied',
  );
  return 'updated';
}

async function put(client: Client, path: string, body: Record<string, unknown>): Promise<void> {
  await client.transport.request({ method: 'PUT', path, body });
}

export async function dataStreamExists(client: Client, name: string): Promise<boolean> {
  try {
    const resolved = await client.indices.resolveIndex({ name });
    return resolved.data_streams.some((stream) => stream.name === name);
  } catch (error) {
    if (statusOf(error) === 404) return false;
    throw error;
  }
}

/**
 * Creates a data stream unless it exists. Clusters without the create-data-stream API (the
 * integ-test distribution of Elasticsearch has none) get it the way a first write would: a `create`
 * of an empty document, which the data stream refuses (no @timestamp), so nothing is stored.
 */
export async function ensureDataStream(client: Client, name: string): Promise<DataStreamOutcome> {
  if (await dataStreamExists(client, name)) return 'existed';
  try {
    await client.indices.createDataStream({ name });
    return 'created';
  } catch (error) {
    if (typeOf(error) === 'resource_already_exists_exception') return 'existed';
    const status = statusOf(error);
    if (status !== 400 && status !== 404 && status !== 405) throw error;
  }
  await client.bulk({ operations: [{ create: { _index: name } }, {}] });
  if (!(await dataStreamExists(client, name))) {
    throw new AppError(
      'KAUDIT_ERR_ELASTICSEARCH',
      `data stream ${name} could not be created (is an index template matching it installed?)`,
    );
  }
  return 'created-by-first-document';
}

function statusOf(error: unknown): number | undefined {
  return error instanceof errors.ResponseError ? error.meta.statusCode : undefined;
}

function typeOf(error: unknown): string | undefined {
  if (!(error instanceof errors.ResponseError)) return undefined;
  return (error.meta.body as { error?: { type?: string } } | undefined)?.error?.type;
}

function reasonOf(error: unknown): string {
  if (!(error instanceof errors.ResponseError)) return String(error);
  const body = error.meta.body as { error?: string | { reason?: string } } | string | undefined;
  if (typeof body === 'string') return body;
  const inner = body?.error;
  return typeof inner === 'string' ? inner : (inner?.reason ?? error.message);
}

import { AppError } from '@kaudit/common';
import {
  type ApplyLogger,
  type ApplyResult,
  applyResources,
  createEsClient,
  DEFAULT_NAMESPACE,
  DEFAULT_RETENTION,
  defaultPoliciesDir,
  esAccessProblem,
  esConnectionProblems,
  namespaceProblem,
  retentionProblem,
} from '@kaudit/es-resources';
import { type Command, Option } from 'commander';

/**
 * `kaudit es-setup`: installs (or updates) kaudit's Elasticsearch resources the way the indexer does
 * at start-up — component and index templates, the ILM policy when asked, and the two data streams
 * of a namespace — for operators who provision clusters ahead of deployment. Idempotent.
 * Connection from the same variables as the indexer: ES_NODE, ES_API_KEY or ES_USERNAME/ES_PASSWORD,
 * ES_CA_FILE.
 */

export interface EsSetupOptions {
  policies: string;
  namespace: string;
  retention: string;
  replicas: number;
  ilm: boolean;
}

/** Every problem with the options and the connection variables, named as the operator wrote them. */
export function esSetupProblems(options: EsSetupOptions, env: Record<string, string | undefined>): string[] {
  const problems = esConnectionProblems(connectionFromEnv(env));
  const namespace = namespaceProblem(options.namespace);
  if (namespace) problems.push(`--namespace: ${namespace}`);
  const retention = retentionProblem(options.retention);
  if (retention) problems.push(`--retention: ${retention}`);
  if (!Number.isInteger(options.replicas) || options.replicas < 0) {
    problems.push('--replicas: must be a whole number >= 0');
  }
  return problems;
}

function connectionFromEnv(env: Record<string, string | undefined>) {
  const value = (name: string) => (env[name]?.trim() ? env[name]!.trim() : undefined);
  return {
    node: value('ES_NODE') ?? 'http://127.0.0.1:9200',
    apiKey: value('ES_API_KEY'),
    username: value('ES_USERNAME'),
    password: value('ES_PASSWORD'),
    caFile: value('ES_CA_FILE'),
  };
}

/** Applies the resources and returns what was done; progress and warnings go to `log`. */
export async function runEsSetup(
  options: EsSetupOptions,
  env: Record<string, string | undefined>,
  log: (line: string) => void,
): Promise<ApplyResult> {
  const problems = esSetupProblems(options, env);
  if (problems.length > 0)
    throw new AppError(
      'KAUDIT_ERR_CONFIG',
      `invalid options:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  const connection = connectionFromEnv(env);
  const client = createEsClient({ ...connection, maxRetries: 2 });
  const logger: ApplyLogger = {
    info: (details, message) => log(`${message} ${JSON.stringify(details)}`),
    warn: (details, message) => log(`warning: ${message} ${JSON.stringify(details)}`),
  };
  try {
    return await applyResources(client, {
      policiesDir: options.policies,
      namespace: options.namespace,
      retention: options.retention,
      numberOfReplicas: options.replicas,
      ilm: options.ilm,
      logger,
    });
  } catch (error) {
    // A certificate, credential or privilege problem: one line naming the variable, not a stack trace.
    const problem = esAccessProblem(error, connection);
    throw problem ? new Error(problem) : error;
  } finally {
    await client.close();
  }
}

/** The summary printed on stdout: one line per resource, greppable by scripts. */
export function formatEsSetupResult(result: ApplyResult): string {
  const lines = [
    ...result.componentTemplates.map((name) => `component template ${name}: applied`),
    ...result.indexTemplates.map((name) => `index template ${name}: applied`),
    `retention: ${result.ilm === 'applied' ? 'ILM policy' : `data stream lifecycle, ${result.retention}`}${
      result.ilm === 'skipped' ? ' (ILM requested but not available on this cluster)' : ''
    }`,
    ...result.dataStreams.map((stream) => `data stream ${stream.name}: ${stream.outcome}`),
    result.streamLifecycle === 'updated'
      ? 'data stream lifecycle: updated'
      : 'data stream lifecycle: unchanged (this cluster has no data stream lifecycle API; only new streams follow the templates)',
  ];
  return `${lines.join('\n')}\n`;
}

export function registerEsSetup(program: Command): void {
  const env = process.env;
  program
    .command('es-setup')
    .description(
      "install or update kaudit's Elasticsearch templates and data streams (idempotent); connects with ES_NODE, ES_API_KEY or ES_USERNAME/ES_PASSWORD, ES_CA_FILE",
    )
    .option(
      '--policies <dir>',
      'directory of component-templates/, index-templates/, ilm-policies/',
      defaultPoliciesDir(),
    )
    .option(
      '--namespace <ns>',
      'data stream namespace (ES_DATA_STREAM_NAMESPACE)',
      env.ES_DATA_STREAM_NAMESPACE || DEFAULT_NAMESPACE,
    )
    .option(
      '--retention <duration>',
      'data_retention of the data streams (ES_RETENTION)',
      env.ES_RETENTION || DEFAULT_RETENTION,
    )
    .addOption(
      new Option('--replicas <n>', 'number_of_replicas (ES_NUMBER_OF_REPLICAS)')
        .default(Number(env.ES_NUMBER_OF_REPLICAS || 1))
        .argParser((value) => Number(value)),
    )
    .option(
      '--ilm',
      'retention by the kaudit-logs ILM policy instead of the data stream lifecycle (ES_ILM_POLICY)',
      env.ES_ILM_POLICY === 'true',
    )
    .action(async (options: EsSetupOptions) => {
      const result = await runEsSetup(options, env, (line) =>
        process.stderr.write(`kaudit es-setup: ${line}\n`),
      );
      process.stdout.write(formatEsSetupResult(result));
    });
}

import { AppError } from '@kaudit/common';
import {
  type ApplyLogger,
  type ApplyResult,
  applyResources,
  createEsClient,
  defaultPoliciesDir,
  type EsResourceSettings,
  esAccessProblem,
  esConnectionProblems,
  type LegacyMigrationResult,
  migrateLegacyEvents,
  parseEsResourceEnv,
} from '@kaudit/es-resources';
import type { Command } from 'commander';

/**
 * `kaudit es-setup`: installs (or updates) kaudit's Elasticsearch resources the way the indexer does
 * at start-up — component and index templates, the ILM policy when asked, and the two data streams
 * of a namespace — for operators who provision clusters ahead of deployment. Idempotent.
 * Connection from the same variables as the indexer: ES_NODE, ES_API_KEY or ES_USERNAME/ES_PASSWORD,
 * ES_CA_FILE.
 */

/** The flags; an absent one falls back to its variable (ES_DATA_STREAM_NAMESPACE, ...). */
export interface EsSetupOptions {
  policies: string;
  namespace?: string;
  retention?: string;
  replicas?: string | number;
  ilm?: boolean;
  /** Copy logs-kaudit.audit-<ns> (before ADR 0008) into the events stream. */
  migrateLegacy?: boolean;
  /** With migrateLegacy: delete the old stream once every document is copied. */
  deleteLegacy?: boolean;
}

const FLAGS = {
  ES_DATA_STREAM_NAMESPACE: ['namespace', '--namespace'],
  ES_RETENTION: ['retention', '--retention'],
  ES_NUMBER_OF_REPLICAS: ['replicas', '--replicas'],
  ES_ILM_POLICY: ['ilm', '--ilm'],
} as const;

/**
 * The flags merged over the variables and parsed by the indexer's parser (es-resources
 * parseEsResourceEnv), so both accept the same values; a problem is named by the flag when the flag
 * was given, else by the variable.
 */
export function esSetupSettings(
  options: EsSetupOptions,
  env: Record<string, string | undefined>,
): { value: EsResourceSettings | undefined; problems: string[] } {
  const merged: Record<string, string | undefined> = { ...env };
  for (const [variable, [key]] of Object.entries(FLAGS)) {
    const flag = options[key];
    if (flag !== undefined) merged[variable] = String(flag);
  }
  const { value, problems } = parseEsResourceEnv(merged);
  return {
    value,
    problems: problems.map((problem) => {
      const entry = Object.entries(FLAGS).find(([variable]) => problem.startsWith(`${variable}:`));
      if (!entry || options[entry[1][0]] === undefined) return problem;
      return `${entry[1][1]}${problem.slice(entry[0].length)}`;
    }),
  };
}

/** Every problem with the options and the connection variables, named as the operator wrote them. */
export function esSetupProblems(options: EsSetupOptions, env: Record<string, string | undefined>): string[] {
  const problems = esConnectionProblems(connectionFromEnv(env));
  problems.push(...esSetupSettings(options, env).problems);
  if (options.deleteLegacy && !options.migrateLegacy)
    problems.push('--delete-legacy: only together with --migrate-legacy');
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

export interface EsSetupResult extends ApplyResult {
  legacy?: LegacyMigrationResult;
}

/** Applies the resources (and migrates when asked) and returns what was done; progress goes to `log`. */
export async function runEsSetup(
  options: EsSetupOptions,
  env: Record<string, string | undefined>,
  log: (line: string) => void,
): Promise<EsSetupResult> {
  const problems = esSetupProblems(options, env);
  if (problems.length > 0)
    throw new AppError(
      'KAUDIT_ERR_CONFIG',
      `invalid options:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  const settings = esSetupSettings(options, env).value!;
  const connection = connectionFromEnv(env);
  const client = createEsClient({ ...connection, maxRetries: 2 });
  const logger: ApplyLogger = {
    info: (details, message) => log(`${message} ${JSON.stringify(details)}`),
    warn: (details, message) => log(`warning: ${message} ${JSON.stringify(details)}`),
  };
  try {
    const applied: EsSetupResult = await applyResources(client, {
      policiesDir: options.policies,
      ...settings,
      logger,
    });
    if (options.migrateLegacy) {
      applied.legacy = await migrateLegacyEvents(client, {
        namespace: settings.namespace,
        deleteLegacy: options.deleteLegacy,
        log,
      });
    }
    return applied;
  } catch (error) {
    // A certificate, credential or privilege problem: one line naming the variable, not a stack trace.
    const problem = esAccessProblem(error, connection);
    throw problem ? new Error(problem) : error;
  } finally {
    await client.close();
  }
}

/** The summary printed on stdout: one line per resource, greppable by scripts. */
export function formatEsSetupResult(result: EsSetupResult): string {
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
    ...legacyLines(result.legacy),
  ];
  return `${lines.join('\n')}\n`;
}

function legacyLines(legacy: LegacyMigrationResult | undefined): string[] {
  if (!legacy) return [];
  if (legacy.outcome === 'no-legacy-stream') return [`legacy data stream ${legacy.from}: none`];
  return [
    `legacy data stream ${legacy.from}: ${legacy.copied} copied, ${legacy.existed} already in ${legacy.to} (of ${legacy.total})`,
    ...(legacy.deleted ? [`legacy data stream ${legacy.from}: deleted`] : []),
    ...(legacy.deleteUnsupported
      ? [
          `legacy data stream ${legacy.from}: kept (this cluster has no delete-data-stream API; delete it by hand)`,
        ]
      : []),
  ];
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
    .option('--namespace <ns>', 'data stream namespace (default: ES_DATA_STREAM_NAMESPACE, else default)')
    .option('--retention <duration>', 'data_retention of the data streams (default: ES_RETENTION, else 365d)')
    .option('--replicas <n>', 'number_of_replicas (default: ES_NUMBER_OF_REPLICAS, else 1)')
    .option(
      '--ilm',
      'retention by the kaudit-logs ILM policy instead of the data stream lifecycle (default: ES_ILM_POLICY)',
    )
    .option(
      '--migrate-legacy',
      'copy the audit events of logs-kaudit.audit-<ns> (before ADR 0008) into logs-kubernetes.audit_logs-kaudit*; repeatable',
    )
    .option('--delete-legacy', 'with --migrate-legacy: delete the old stream once every document is copied')
    .action(async (options: EsSetupOptions) => {
      const result = await runEsSetup(options, env, (line) =>
        process.stderr.write(`kaudit es-setup: ${line}\n`),
      );
      process.stdout.write(formatEsSetupResult(result));
    });
}

import { existsSync } from 'node:fs';
import { DEFAULT_TOPICS } from '@kaudit/audit-schema';
import { parseRedactionPolicyYaml, type RedactionPolicy } from '@kaudit/redaction';
import {
  ConfigError,
  defaultPolicyPath,
  envBoolean,
  envDurationMs,
  envInt,
  envList,
  envOptional,
  type KafkaSecurity,
  kafkaBrokersEnv,
  loadKafkaSecurity,
  parseConfig,
  readPolicyFile,
  startupTimeoutEnv,
} from '@kaudit/service-kit';
import { z } from 'zod';

export const DEFAULT_REDACTION_POLICY_FILE = defaultPolicyPath('redaction.yaml');
const MiB = 1024 * 1024;

/** Cluster names end up in Kafka keys and Elasticsearch fields: keep them plain. */
export const CLUSTER_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const clusterName = z.string().regex(CLUSTER_NAME, 'must be 1-63 letters, digits, "-", "_" or "."');

/**
 * `CN` or `CN=cluster`, comma-separated: certificate subjects allowed to post, optionally naming the
 * cluster their events belong to (so one sink serves several API servers without trusting the URL).
 */
function parseAllowedSubjects(list: string[], ctx: z.RefinementCtx): Map<string, string | undefined> {
  const map = new Map<string, string | undefined>();
  for (const entry of list) {
    const at = entry.lastIndexOf('=');
    const cn = at < 0 ? entry : entry.slice(0, at).trim();
    const cluster = at < 0 ? undefined : entry.slice(at + 1).trim();
    if (cn === '' || (cluster !== undefined && !CLUSTER_NAME.test(cluster))) {
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" must be CN or CN=cluster (cluster: letters, digits, -_.)`,
      });
      continue;
    }
    map.set(cn, cluster);
  }
  return map;
}

/** Keys are the variable names an operator sets (services/sink/README.md lists them). */
export const SinkEnvSchema = z.object({
  ...kafkaBrokersEnv,
  ...startupTimeoutEnv,
  SINK_PORT: envInt(8443, { min: 0, max: 65535 }),
  SINK_HOST: z.string().min(1).default('0.0.0.0'),
  SINK_TLS_CERT_FILE: envOptional(),
  SINK_TLS_KEY_FILE: envOptional(),
  SINK_CLIENT_CA_FILE: envOptional(),
  SINK_CLIENT_ALLOWED_SUBJECTS: envList([]).transform((list, ctx) => parseAllowedSubjects(list, ctx)),
  SINK_AUTH_TOKEN_FILE: envOptional(),
  SINK_INSECURE_DEV: envBoolean(false),
  SINK_CLUSTER_NAME: clusterName.default('default'),
  AUDIT_EVENTS_TOPIC: z.string().min(1).default(DEFAULT_TOPICS.events),
  AUDIT_DLQ_TOPIC: z.string().min(1).default(DEFAULT_TOPICS.dlq),
  SINK_SPOOL_DIR: z.string().min(1).default('data/sink-spool'),
  SINK_SPOOL_MAX_BYTES: envInt(1024 * MiB, { min: 16 * MiB }),
  SINK_MAX_BODY_BYTES: envInt(512 * MiB, { min: 64 * 1024 }),
  SINK_MAX_EVENT_BYTES: envInt(8 * MiB, { min: 1024 * 1024 }),
  SINK_REQUEST_TIMEOUT_MS: envDurationMs(10_000).refine(
    (ms) => ms >= 1000 && ms <= 25_000,
    'must be between 1s and 25s (the API server gives up after 30s)',
  ),
  SINK_TLS_HANDSHAKE_TIMEOUT_MS: envDurationMs(5000).refine(
    (ms) => ms >= 100 && ms <= 60_000,
    'must be between 100ms and 60s',
  ),
  SINK_REDACTION_POLICY_FILE: z.string().min(1).default(DEFAULT_REDACTION_POLICY_FILE),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type SinkEnv = z.infer<typeof SinkEnvSchema>;

/**
 * Rules across variables, on the raw environment so they are reported together with the per-variable
 * problems (a zod object refinement would stay silent until every field parsed).
 */
function crossCheck(env: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  const set = (name: string) => (env[name] ?? '').trim() !== '';
  const insecure = ['true', '1', 'yes'].includes((env.SINK_INSECURE_DEV ?? '').trim());
  for (const name of [
    'SINK_TLS_CERT_FILE',
    'SINK_TLS_KEY_FILE',
    'SINK_CLIENT_CA_FILE',
    'SINK_AUTH_TOKEN_FILE',
  ]) {
    const file = env[name]?.trim();
    if (file && !existsSync(file)) problems.push(`${name}: file ${file} does not exist`);
  }
  if (set('SINK_TLS_CERT_FILE') !== set('SINK_TLS_KEY_FILE')) {
    const missing = set('SINK_TLS_CERT_FILE') ? 'SINK_TLS_KEY_FILE' : 'SINK_TLS_CERT_FILE';
    problems.push(`${missing}: is required when the other of SINK_TLS_CERT_FILE/SINK_TLS_KEY_FILE is set`);
  }
  if (set('SINK_CLIENT_ALLOWED_SUBJECTS') && !set('SINK_CLIENT_CA_FILE'))
    problems.push(
      'SINK_CLIENT_ALLOWED_SUBJECTS: needs SINK_CLIENT_CA_FILE (subjects come from client certificates)',
    );
  if (set('SINK_CLIENT_CA_FILE') && !set('SINK_TLS_CERT_FILE') && !set('SINK_TLS_KEY_FILE'))
    problems.push(
      'SINK_CLIENT_CA_FILE: client certificates need TLS: set SINK_TLS_CERT_FILE and SINK_TLS_KEY_FILE',
    );
  if (insecure) return problems;
  if (!set('SINK_TLS_CERT_FILE') && !set('SINK_TLS_KEY_FILE'))
    for (const name of ['SINK_TLS_CERT_FILE', 'SINK_TLS_KEY_FILE'])
      problems.push(`${name}: is required (HTTPS) unless SINK_INSECURE_DEV=true`);
  if (!set('SINK_CLIENT_CA_FILE') && !set('SINK_AUTH_TOKEN_FILE'))
    for (const name of ['SINK_CLIENT_CA_FILE', 'SINK_AUTH_TOKEN_FILE'])
      problems.push(
        `${name}: one of SINK_CLIENT_CA_FILE (mTLS) or SINK_AUTH_TOKEN_FILE (bearer) is required unless SINK_INSECURE_DEV=true`,
      );
  return problems;
}

export interface SinkConfig {
  kafkaBrokers: string[];
  /** KAFKA_STARTUP_TIMEOUT: how long the start may wait for Kafka (and Elasticsearch) to come up. */
  kafkaStartupTimeoutMs: number;
  kafkaSecurity: KafkaSecurity;
  port: number;
  host: string;
  tls: { certFile: string; keyFile: string; caFile: string | undefined } | undefined;
  /** CN -> cluster (or undefined: allowed, cluster from the URL or SINK_CLUSTER_NAME); empty: any CN the CA signed. */
  allowedSubjects: Map<string, string | undefined>;
  authTokenFile: string | undefined;
  insecureDev: boolean;
  clusterName: string;
  eventsTopic: string;
  dlqTopic: string;
  spoolDir: string;
  spoolMaxBytes: number;
  maxBodyBytes: number;
  maxEventBytes: number;
  requestTimeoutMs: number;
  /** A new connection's time to finish its TLS handshake (plain HTTP: to send its headers). */
  tlsHandshakeTimeoutMs: number;
  redactionPolicyFile: string;
  redactionPolicy: RedactionPolicy;
  logLevel: SinkEnv['LOG_LEVEL'];
}

/** The sink's one reader of the environment; throws ConfigError naming every problem at once. */
export function loadSinkConfig(env: Record<string, string | undefined> = process.env): SinkConfig {
  const { value: parsed, problems } = parseConfig(SinkEnvSchema, env);
  problems.push(...crossCheck(env));
  const kafkaSecurity = loadKafkaSecurity(env, problems);
  const policyFile =
    parsed?.SINK_REDACTION_POLICY_FILE ?? env.SINK_REDACTION_POLICY_FILE ?? DEFAULT_REDACTION_POLICY_FILE;
  const policy = readPolicyFile({
    variable: 'SINK_REDACTION_POLICY_FILE',
    file: policyFile,
    problems,
    parse: parseRedactionPolicyYaml,
  });
  if (problems.length > 0 || !parsed || !policy) throw new ConfigError(problems);
  return {
    kafkaBrokers: parsed.KAFKA_BROKERS,
    kafkaStartupTimeoutMs: parsed.KAFKA_STARTUP_TIMEOUT,
    kafkaSecurity,
    port: parsed.SINK_PORT,
    host: parsed.SINK_HOST,
    tls:
      parsed.SINK_TLS_CERT_FILE && parsed.SINK_TLS_KEY_FILE
        ? {
            certFile: parsed.SINK_TLS_CERT_FILE,
            keyFile: parsed.SINK_TLS_KEY_FILE,
            caFile: parsed.SINK_CLIENT_CA_FILE,
          }
        : undefined,
    allowedSubjects: parsed.SINK_CLIENT_ALLOWED_SUBJECTS,
    authTokenFile: parsed.SINK_AUTH_TOKEN_FILE,
    insecureDev: parsed.SINK_INSECURE_DEV,
    clusterName: parsed.SINK_CLUSTER_NAME,
    eventsTopic: parsed.AUDIT_EVENTS_TOPIC,
    dlqTopic: parsed.AUDIT_DLQ_TOPIC,
    spoolDir: parsed.SINK_SPOOL_DIR,
    spoolMaxBytes: parsed.SINK_SPOOL_MAX_BYTES,
    maxBodyBytes: parsed.SINK_MAX_BODY_BYTES,
    maxEventBytes: parsed.SINK_MAX_EVENT_BYTES,
    requestTimeoutMs: parsed.SINK_REQUEST_TIMEOUT_MS,
    tlsHandshakeTimeoutMs: parsed.SINK_TLS_HANDSHAKE_TIMEOUT_MS,
    redactionPolicyFile: policyFile,
    redactionPolicy: policy,
    logLevel: parsed.LOG_LEVEL,
  };
}

/** What the operator is warned about at start-up when SINK_INSECURE_DEV=true relaxed something. */
export function insecureWarnings(config: SinkConfig): string[] {
  const warnings: string[] = [];
  if (!config.tls)
    warnings.push('serving plain HTTP: audit events (and tokens) cross the network unencrypted');
  if (!config.tls?.caFile && !config.authTokenFile)
    warnings.push('no client authentication: anyone who can reach the port can write audit events');
  return warnings;
}

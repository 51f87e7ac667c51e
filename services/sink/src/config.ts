import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
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
  parsePrefixedKafkaSecurity,
  readPolicyFile,
  startupTimeoutEnv,
} from '@kaudit/service-kit';
import { z } from 'zod';

/** The Event Hub side's TLS/SASL variables: SINK_EVENTHUB_KAFKA_SSL, …_KAFKA_SASL_PASSWORD_FILE. */
export const EVENTHUB_PREFIX = 'SINK_EVENTHUB_';
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
  // Processes taking requests on the one port (workers.ts): `auto` is one per core the process may use.
  SINK_WORKERS: z.preprocess(
    (v) => (typeof v === 'string' && v.trim().toLowerCase() === 'auto' ? String(availableParallelism()) : v),
    envInt(1, { min: 1, max: 64 }),
  ),
  SINK_HOST: z.string().min(1).default('0.0.0.0'),
  SINK_TLS_CERT_FILE: envOptional(),
  SINK_TLS_KEY_FILE: envOptional(),
  SINK_CLIENT_CA_FILE: envOptional(),
  SINK_CLIENT_ALLOWED_SUBJECTS: envList([]).transform((list, ctx) => parseAllowedSubjects(list, ctx)),
  SINK_AUTH_TOKEN_FILE: envOptional(),
  SINK_INSECURE_DEV: envBoolean(false),
  SINK_FIREHOSE_ACCESS_KEY_FILE: envOptional(),
  SINK_PUBSUB_JWKS_FILE: envOptional(),
  SINK_PUBSUB_AUDIENCE: envOptional(),
  SINK_PUBSUB_SERVICE_ACCOUNT: envOptional(),
  SINK_PUBSUB_TOKEN_FILE: envOptional(),
  SINK_EVENTHUB_BROKERS: envList([]),
  SINK_EVENTHUB_TOPIC: envOptional(),
  SINK_EVENTHUB_GROUP_ID: z.string().min(1).default('kaudit-sink'),
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
    'SINK_FIREHOSE_ACCESS_KEY_FILE',
    'SINK_PUBSUB_JWKS_FILE',
    'SINK_PUBSUB_TOKEN_FILE',
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
  if (set('SINK_PUBSUB_JWKS_FILE') && !set('SINK_PUBSUB_AUDIENCE'))
    problems.push(
      "SINK_PUBSUB_AUDIENCE: is required with SINK_PUBSUB_JWKS_FILE (the push subscription's audience)",
    );
  for (const name of ['SINK_PUBSUB_AUDIENCE', 'SINK_PUBSUB_SERVICE_ACCOUNT'])
    if (set(name) && !set('SINK_PUBSUB_JWKS_FILE'))
      problems.push(`${name}: only used with SINK_PUBSUB_JWKS_FILE`);
  if (set('SINK_EVENTHUB_BROKERS') !== set('SINK_EVENTHUB_TOPIC'))
    problems.push(
      `${set('SINK_EVENTHUB_BROKERS') ? 'SINK_EVENTHUB_TOPIC' : 'SINK_EVENTHUB_BROKERS'}: is required when the other of SINK_EVENTHUB_BROKERS/SINK_EVENTHUB_TOPIC is set`,
    );
  if (insecure) return problems;
  if (!set('SINK_TLS_CERT_FILE') && !set('SINK_TLS_KEY_FILE'))
    for (const name of ['SINK_TLS_CERT_FILE', 'SINK_TLS_KEY_FILE'])
      problems.push(`${name}: is required (HTTPS) unless SINK_INSECURE_DEV=true`);
  const sourceAuth = [
    'SINK_FIREHOSE_ACCESS_KEY_FILE',
    'SINK_PUBSUB_JWKS_FILE',
    'SINK_PUBSUB_TOKEN_FILE',
  ].some(set);
  if (!set('SINK_CLIENT_CA_FILE') && !set('SINK_AUTH_TOKEN_FILE') && !sourceAuth)
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
  /** The managed-cluster sources (docs/sources.md): each route is off without its credential. */
  sources: {
    firehoseAccessKeyFile: string | undefined;
    pubsubJwksFile: string | undefined;
    pubsubAudience: string | undefined;
    pubsubServiceAccount: string | undefined;
    pubsubTokenFile: string | undefined;
  };
  /** The AKS bridge (event-hubs-bridge.ts): an Event Hub's Kafka endpoint, or undefined: off. */
  eventHub: { brokers: string[]; topic: string; groupId: string; security: KafkaSecurity } | undefined;
  insecureDev: boolean;
  clusterName: string;
  eventsTopic: string;
  dlqTopic: string;
  /** SINK_WORKERS: processes sharing the port, each with its own spool (1: this process alone). */
  workers: number;
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
  const hubSecurity = parsePrefixedKafkaSecurity(env, EVENTHUB_PREFIX);
  problems.push(...hubSecurity.problems);
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
    sources: {
      firehoseAccessKeyFile: parsed.SINK_FIREHOSE_ACCESS_KEY_FILE,
      pubsubJwksFile: parsed.SINK_PUBSUB_JWKS_FILE,
      pubsubAudience: parsed.SINK_PUBSUB_AUDIENCE,
      pubsubServiceAccount: parsed.SINK_PUBSUB_SERVICE_ACCOUNT,
      pubsubTokenFile: parsed.SINK_PUBSUB_TOKEN_FILE,
    },
    eventHub:
      parsed.SINK_EVENTHUB_BROKERS.length > 0 && parsed.SINK_EVENTHUB_TOPIC && hubSecurity.value
        ? {
            brokers: parsed.SINK_EVENTHUB_BROKERS,
            topic: parsed.SINK_EVENTHUB_TOPIC,
            groupId: parsed.SINK_EVENTHUB_GROUP_ID,
            security: hubSecurity.value,
          }
        : undefined,
    insecureDev: parsed.SINK_INSECURE_DEV,
    clusterName: parsed.SINK_CLUSTER_NAME,
    eventsTopic: parsed.AUDIT_EVENTS_TOPIC,
    dlqTopic: parsed.AUDIT_DLQ_TOPIC,
    workers: parsed.SINK_WORKERS,
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

import { readFileSync } from 'node:fs';
import { DEFAULT_TOPICS } from '@kaudit/audit-schema';
import {
  ConfigError,
  defaultPolicyPath,
  type EnvRenames,
  envBoolean,
  envDurationMs,
  envInt,
  envOptional,
  type KafkaSecurity,
  kafkaBrokersEnv,
  loadKafkaSecurity,
  parseConfig,
  readPolicyFile,
  startupTimeoutEnv,
} from '@kaudit/service-kit';
import { z } from 'zod';
import { type ResolvedDestination, resolveDestinationSecrets } from './destination-secrets';
import type { KibanaLinkOptions } from './kibana-link';
import { parseRoutingPolicy, type RoutingPolicy } from './routing';

export const DEFAULT_DELIVERED_TOPIC = 'k8s-audit.alerter-delivered';
export const DEFAULT_ROUTING_FILE = defaultPolicyPath('routing.yaml');

/** New names with their unit -> the old names, still read (a test per alias in config.test.ts). */
export const ENV_RENAMES: EnvRenames = {
  ALERTER_COMMIT_INTERVAL_MS: 'ALERTER_COMMIT_INTERVAL',
  ALERTER_THROTTLE_FLUSH_INTERVAL_MS: 'ALERTER_THROTTLE_FLUSH_INTERVAL',
  ALERTER_THROTTLE_GRACE_MS: 'ALERTER_THROTTLE_GRACE',
  ALERTER_DEDUP_RETENTION_MS: 'ALERTER_DEDUP_RETENTION',
  ALERTER_DEDUP_LOAD_TIMEOUT_MS: 'ALERTER_DEDUP_LOAD_TIMEOUT',
  ALERTER_DRAIN_TIMEOUT_MS: 'ALERTER_DRAIN_TIMEOUT',
};

/** Keys are the variable names an operator sets (README "Configuration" lists them). */
export const EnvSchema = z.object({
  ...kafkaBrokersEnv,
  ...startupTimeoutEnv,
  AUDIT_ALERTS_TOPIC: z.string().min(1).default(DEFAULT_TOPICS.alerts),
  AUDIT_DLQ_TOPIC: z.string().min(1).default(DEFAULT_TOPICS.dlq),
  ALERTER_DELIVERED_TOPIC: z.string().min(1).default(DEFAULT_DELIVERED_TOPIC),
  ALERTER_ROUTING_FILE: z.string().min(1).default(DEFAULT_ROUTING_FILE),
  ALERTER_GROUP_ID: z.string().min(1).default('kaudit-alerter'),
  ALERTER_PORT: envInt(9303, { min: 0, max: 65535 }),
  ALERTER_FROM_BEGINNING: envBoolean(true),
  ALERTER_MAX_HELD: envInt(10_000, { min: 1 }),
  ALERTER_MAX_QUEUED: envInt(10_000, { min: 1 }),
  ALERTER_COMMIT_INTERVAL: envDurationMs(1000),
  ALERTER_THROTTLE_FLUSH_INTERVAL: envDurationMs(5000),
  ALERTER_THROTTLE_GRACE: envDurationMs(30_000),
  ALERTER_DEDUP_MAX_ENTRIES: envInt(500_000, { min: 1000 }),
  ALERTER_DEDUP_RETENTION: envDurationMs(14 * 86_400_000),
  ALERTER_DEDUP_LOAD_TIMEOUT: envDurationMs(120_000),
  ALERTER_DRAIN_TIMEOUT: envDurationMs(10_000),
  KIBANA_BASE_URL: envOptional().pipe(z.url({ protocol: /^https?$/ }).optional()),
  KIBANA_FINDINGS_DATA_VIEW: z.string().min(1).default('kaudit-findings'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type AlerterEnv = z.infer<typeof EnvSchema>;

export interface AlerterOptions {
  alertsTopic: string;
  dlqTopic: string;
  deliveredTopic: string;
  groupId: string;
  /** A new consumer group starts at the oldest finding still on the topic (true) or at new ones. */
  fromBeginning: boolean;
  /**
   * Findings held in open throttle windows; reading pauses at this many (until digests release them).
   * Deliveries waiting on a destination do not count: each destination has its own maxQueued.
   */
  maxHeld: number;
  /** Per destination: deliveries waiting or in progress; beyond it a delivery is dead-lettered at once. */
  maxQueued: number;
  commitIntervalMs: number;
  throttleFlushIntervalMs: number;
  /** A window's digest waits this long after the window ended for late findings. */
  throttleGraceMs: number;
  dedupMaxEntries: number;
  dedupRetentionMs: number;
  dedupLoadTimeoutMs: number;
}

export interface AlerterConfig {
  env: AlerterEnv;
  routing: RoutingPolicy;
  /** The destinations of routing.yaml with their secrets read; destinations.ts builds the senders. */
  destinationSecrets: ResolvedDestination[];
  kibana?: KibanaLinkOptions;
  options: AlerterOptions;
  kafkaSecurity: KafkaSecurity;
}

/**
 * Environment, routing.yaml and the destination secrets it references, checked together: one
 * ConfigError names every bad variable, every invalid routing key and every missing secret (by
 * variable or file name, never by value).
 */
export function loadAlerterConfig(
  env: Record<string, string | undefined> = process.env,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): AlerterConfig {
  const { value: parsed, problems } = parseConfig(EnvSchema, env, ENV_RENAMES);
  const kafkaSecurity = loadKafkaSecurity(env, problems);
  const routingFile = parsed?.ALERTER_ROUTING_FILE ?? env.ALERTER_ROUTING_FILE ?? DEFAULT_ROUTING_FILE;
  const routing = readPolicyFile({
    variable: 'ALERTER_ROUTING_FILE',
    file: routingFile,
    problems,
    readFile,
    parse: parseRoutingPolicy,
  });
  let destinationSecrets: ResolvedDestination[] = [];
  if (routing) {
    const read = resolveDestinationSecrets(routing, { env, readFile });
    problems.push(...read.problems.map((p) => `${routingFile}: ${p}`));
    destinationSecrets = read.resolved;
  }
  if (problems.length > 0 || !parsed || !routing) throw new ConfigError(problems);
  return {
    env: parsed,
    kafkaSecurity,
    routing,
    destinationSecrets,
    ...(parsed.KIBANA_BASE_URL
      ? { kibana: { baseUrl: parsed.KIBANA_BASE_URL, dataViewId: parsed.KIBANA_FINDINGS_DATA_VIEW } }
      : {}),
    options: {
      alertsTopic: parsed.AUDIT_ALERTS_TOPIC,
      dlqTopic: parsed.AUDIT_DLQ_TOPIC,
      deliveredTopic: parsed.ALERTER_DELIVERED_TOPIC,
      groupId: parsed.ALERTER_GROUP_ID,
      fromBeginning: parsed.ALERTER_FROM_BEGINNING,
      maxHeld: parsed.ALERTER_MAX_HELD,
      maxQueued: parsed.ALERTER_MAX_QUEUED,
      commitIntervalMs: parsed.ALERTER_COMMIT_INTERVAL,
      throttleFlushIntervalMs: parsed.ALERTER_THROTTLE_FLUSH_INTERVAL,
      throttleGraceMs: parsed.ALERTER_THROTTLE_GRACE,
      dedupMaxEntries: parsed.ALERTER_DEDUP_MAX_ENTRIES,
      dedupRetentionMs: parsed.ALERTER_DEDUP_RETENTION,
      dedupLoadTimeoutMs: parsed.ALERTER_DEDUP_LOAD_TIMEOUT,
    },
  };
}

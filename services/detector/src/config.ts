import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { DEFAULT_TOPICS } from '@kaudit/audit-schema';
import { loadPolicyText, type Policy } from '@kaudit/detection';
import {
  ConfigError,
  defaultPolicyPath,
  type EnvRenames,
  envDurationMs,
  envInt,
  type KafkaSecurity,
  kafkaBrokersEnv,
  loadKafkaSecurity,
  parseConfig,
  readPolicyFile,
  startupTimeoutEnv,
} from '@kaudit/service-kit';
import { z } from 'zod';

export const DEFAULT_POLICY_FILE = defaultPolicyPath('detection.yaml');
export const DEFAULT_STATE_TOPIC = 'k8s-audit.detector-state';

/** New names with their unit -> the old names, still read (a test per alias in config.test.ts). */
export const ENV_RENAMES: EnvRenames = {
  DETECTOR_IDLE_FLUSH_MS: 'DETECTOR_IDLE_FLUSH',
  DETECTOR_TRANSACTION_TIMEOUT_MS: 'DETECTOR_TRANSACTION_TIMEOUT',
  DETECTOR_SESSION_TIMEOUT_MS: 'DETECTOR_SESSION_TIMEOUT',
};

/** Keys are the variable names an operator sets (services/detector/README.md lists them). */
export const EnvSchema = z.object({
  ...kafkaBrokersEnv,
  ...startupTimeoutEnv,
  AUDIT_EVENTS_TOPIC: z.string().min(1).default(DEFAULT_TOPICS.events),
  AUDIT_ALERTS_TOPIC: z.string().min(1).default(DEFAULT_TOPICS.alerts),
  AUDIT_DLQ_TOPIC: z.string().min(1).default(DEFAULT_TOPICS.dlq),
  DETECTOR_POLICY_FILE: z.string().min(1).default(DEFAULT_POLICY_FILE),
  DETECTOR_STATE_TOPIC: z.string().min(1).default(DEFAULT_STATE_TOPIC),
  DETECTOR_GROUP_ID: z.string().min(1).default('kaudit-detector'),
  /** Stable per replica (a StatefulSet pod name): the transactional id, so a restart fences its predecessor. */
  DETECTOR_INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, 'must be 1-100 letters, digits, ".", "_" or "-"')
    .default(
      hostname()
        .replace(/[^A-Za-z0-9._-]/g, '-')
        .slice(0, 100) || 'detector',
    ),
  DETECTOR_PORT: envInt(9301, { min: 0, max: 65535 }),
  /** A partition without events this long has its clock moved on by the wall clock, closing windows. */
  DETECTOR_IDLE_FLUSH: envDurationMs(30_000).refine((ms) => ms >= 1000, 'must be at least 1s'),
  /** A Kafka transaction left open by a crashed detector is aborted by the broker after this. */
  DETECTOR_TRANSACTION_TIMEOUT: envDurationMs(60_000).refine(
    (ms) => ms >= 1000 && ms <= 900_000,
    'must be between 1s and 15m (the broker caps transaction.max.timeout.ms)',
  ),
  /** The group drops a detector that has not heart-beaten this long (then its partitions move). */
  DETECTOR_SESSION_TIMEOUT: envDurationMs(30_000).refine(
    (ms) => ms >= 6000,
    'must be at least 6s (the broker minimum)',
  ),
  /**
   * The broker holds a fetch up to this long to fill a batch: fewer, larger transactions at high rates
   * (each writes the state of every identity it touched once), at most this much later at low ones.
   */
  DETECTOR_BATCH_WAIT_MS: envDurationMs(500).refine((ms) => ms <= 10_000, 'must be at most 10s'),
  /**
   * Most bytes of one partition's batch (the consumer fetches up to 4 of them at once): catching up on
   * a backlog, a larger batch writes each identity's state once for more of its events.
   */
  DETECTOR_MAX_BATCH_BYTES: envInt(8 * 1024 * 1024, { min: 1024 * 1024, max: 64 * 1024 * 1024 }),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type DetectorEnv = z.infer<typeof EnvSchema>;

export interface DetectorConfig {
  env: DetectorEnv;
  policy: Policy;
  kafkaSecurity: KafkaSecurity;
}

/** Environment and the detection policy, checked together: one ConfigError lists every problem. */
export function loadDetectorConfig(
  env: Record<string, string | undefined> = process.env,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): DetectorConfig {
  const { value: parsed, problems } = parseConfig(EnvSchema, env, ENV_RENAMES);
  const kafkaSecurity = loadKafkaSecurity(env, problems);
  const policy = readPolicyFile({
    variable: 'DETECTOR_POLICY_FILE',
    file: parsed?.DETECTOR_POLICY_FILE ?? env.DETECTOR_POLICY_FILE ?? DEFAULT_POLICY_FILE,
    problems,
    readFile,
    parse: (text) => loadPolicyText(text),
  });
  if (problems.length > 0 || !parsed || !policy) throw new ConfigError(problems);
  return { env: parsed, policy, kafkaSecurity };
}

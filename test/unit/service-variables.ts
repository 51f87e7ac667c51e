import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as serviceKit from '../../packages/service-kit/src/index';
import { EnvSchema as AlerterEnv } from '../../services/alerter/src/config';
import { EnvSchema as DetectorEnv } from '../../services/detector/src/config';
import { IndexerEnvSchema } from '../../services/indexer/src/config';
import { SinkEnvSchema } from '../../services/sink/src/config';

// The variable names each service reads, for tests of what deploy/ sets (helm-chart.test.ts, the rendered
// manifests in test/e2e/helm.int.test.ts).
const root = join(__dirname, '../..');

// Until the secured-Kafka variables are merged everywhere, the names stand here as kafka-security.ts has them.
const KAFKA_SECURITY_VARIABLES: readonly string[] = ((serviceKit as Record<string, unknown>)
  .KAFKA_SECURITY_VARIABLES as string[] | undefined) ?? [
  'KAFKA_SSL',
  'KAFKA_SSL_CA_FILE',
  'KAFKA_SSL_CERT_FILE',
  'KAFKA_SSL_KEY_FILE',
  'KAFKA_SASL_MECHANISM',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
  'KAFKA_SASL_PASSWORD_FILE',
];

/** Variables each service reads: its config.ts schema, the Kafka security variables, and for the alerter
 * the `{ env: NAME }` references of the routing file the chart mounts. */
export function serviceVariables(): Record<string, Set<string>> {
  const routing = readFileSync(join(root, 'policies/routing.yaml'), 'utf8');
  const routingEnv = [...routing.matchAll(/\{\s*env:\s*([A-Z_][A-Z0-9_]*)\s*\}/g)].map((m) => m[1]!);
  const of = (shape: object, extra: string[] = []) =>
    new Set([...Object.keys(shape), ...KAFKA_SECURITY_VARIABLES, ...extra]);
  return {
    sink: of(SinkEnvSchema.shape),
    detector: of(DetectorEnv.shape),
    indexer: of(IndexerEnvSchema.shape),
    alerter: of(AlerterEnv.shape, routingEnv),
  };
}

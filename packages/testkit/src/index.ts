import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AuditEvent, decodeAuditText, parseAuditEvent } from '@kaudit/audit-schema';

export {
  type ApiServer,
  type ApiServerOptions,
  type ApiServerUser,
  apiServerScript,
  type KubectlResult,
  metricSum,
  startApiServer,
} from './apiserver';
export { type ConsumerFault, consumerFault } from './consumer-fault';
export {
  DEV_CLIENT_COMMON_NAME,
  type DevCerts,
  type DevCertsOptions,
  devCertPaths,
  ensureDevCerts,
  type ForeignClientCerts,
  readDevToken,
} from './dev-certs';

/** ../shared/audit-samples beside the checkout (real events from real clusters; never edited). */
export const samplesDir =
  process.env.KAUDIT_SAMPLES_DIR ?? join(__dirname, '../../../../shared/audit-samples');

/** Every valid event of one sample file, relative to samplesDir. */
export function loadSampleEvents(path: string): AuditEvent[] {
  return decodeAuditText(readFileSync(join(samplesDir, path), 'utf8')).flatMap((item) => {
    if (!item.ok) return [];
    const parsed = parseAuditEvent(item.raw);
    return parsed.ok ? [parsed.event] : [];
  });
}

let counter = 0;

/** A valid Metadata-level audit event; a Secret get by a human user unless overridden. */
export function buildEvent(overrides: Partial<AuditEvent> & Record<string, unknown> = {}): AuditEvent {
  counter += 1;
  const at = (overrides.requestReceivedTimestamp as string | undefined) ?? '2026-01-05T10:00:00.000000Z';
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/default/secrets/db-password',
    verb: 'get',
    user: { username: 'alice@example.com', groups: ['system:authenticated'] },
    sourceIPs: ['203.0.113.10'],
    userAgent: 'kubectl/v1.31.0 (linux/amd64) kubernetes/abc',
    objectRef: { resource: 'secrets', namespace: 'default', name: 'db-password', apiVersion: 'v1' },
    responseStatus: { code: 200 },
    requestReceivedTimestamp: at,
    stageTimestamp: at,
    ...overrides,
  };
}

/** Addresses of the test stack (test/stack/stack.sh exports the same variables). */
/** Whether a message of the events topic is a chain step's copy (audit-schema chain-copies.ts), not an original. */
export function isChainCopy(value: Buffer | string | null | undefined): boolean {
  if (value === null || value === undefined) return false;
  return (JSON.parse(value.toString()) as { copy?: unknown }).copy !== undefined;
}

export function stackEnv(): { kafkaBrokers: string[]; esNode: string } {
  return {
    kafkaBrokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim()),
    esNode: process.env.ES_NODE ?? 'http://127.0.0.1:9200',
  };
}

/** A name unique to this test run, for topics, groups and data streams, so suites never share state. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Polls `check` until it returns a value other than undefined, or fails after timeoutMs with `what`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
export { type BenthosProcess, benthosBinary, startBenthos } from './benthos';
export {
  readStackEnvFile,
  type SecureKafkaStack,
  secureKafkaEnv,
  secureKafkaStack,
  stackVariables,
} from './secure-stack';
export { type DefectBody, loadSinkDefects, plantedSecrets, sinkDefectsDir } from './sink-defects';

/** Recorded payloads of the managed-cluster sources (EKS, GKE, AKS), written from the providers' docs. */
export const sourceFixturesDir = join(__dirname, '../fixtures/sources');

export function sourceFixture(name: string): Buffer {
  return readFileSync(join(sourceFixturesDir, name));
}
export { freeLoopbackPort, freeLoopbackPorts } from './ports';

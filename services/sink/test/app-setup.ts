import { createRedactor, DEFAULT_REDACTION_POLICY } from '@kaudit/redaction';
import { createLogger } from '@kaudit/service-kit';
import { type AppDeps, createApp } from '../src/app';
import type { Authenticator } from '../src/auth';
import type { Delivery } from '../src/delivery';
import { createSinkMetrics } from '../src/metrics';
import type { OutMessage } from '../src/spool-format';

/**
 * The sink's app for unit tests (requests injected with supertest): the shipped default redaction, topics
 * `events` and `dlq`, and a delivery that keeps what it was given (or the `deliver` passed in).
 */
export function testApp(options: {
  authenticate: Authenticator;
  overrides?: Partial<AppDeps>;
  deliver?: (messages: readonly OutMessage[]) => Promise<'kafka' | 'spool'>;
  admit?: Delivery['admit'];
}) {
  const delivered: OutMessage[][] = [];
  const metrics = createSinkMetrics();
  const app = createApp({
    logger: createLogger({ service: 'sink-test', level: 'silent' }),
    metrics,
    authenticate: options.authenticate,
    ingest: { redactor: createRedactor(DEFAULT_REDACTION_POLICY), eventsTopic: 'events', dlqTopic: 'dlq' },
    delivery: {
      deliver:
        options.deliver ??
        (async (messages) => {
          delivered.push([...messages]);
          return 'kafka';
        }),
      ready: () => true,
      admit: options.admit ?? (() => ({ ok: true, release: () => undefined })),
    },
    clusterName: 'default',
    maxBodyBytes: 64 * 1024,
    maxEventBytes: 1024 * 1024,
    requestTimeoutMs: 1000,
    ...options.overrides,
  });
  return { app, delivered, metrics };
}

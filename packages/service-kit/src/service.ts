import type { Kafka } from 'kafkajs';
import { verifyKafkaSecurity } from './kafka/access';
import { type CreateKafkaOptions, createKafka } from './kafka/client';
import type { KafkaSecurity } from './kafka/security';
import { createLiveness, type Liveness } from './liveness';
import { createLogger, type Logger } from './logger';
import type { ShutdownStep } from './shutdown';
import { reportStarted } from './workers';

/**
 * What every service's main.ts runs (loadConfig -> create<Name>Service -> registerShutdown -> start):
 * its logger and liveness, the shutdown steps start() adds in the order they must run, and start().
 */
export interface Service {
  logger: Logger;
  liveness: Liveness;
  /** Filled by start(), in order; a signal during start-up runs the steps added so far. */
  steps: ShutdownStep[];
  timeoutMs?: number;
  start(): Promise<void>;
}

/** What a service's start() gets from the shell. */
export interface ServiceContext {
  logger: Logger;
  liveness: Liveness;
  /** Adds a shutdown step; steps run in the order they were added. */
  onStop(name: string, run: () => Promise<void> | void): void;
  /**
   * The service's Kafka client (serviceKafka below): refused credentials or an untrusted CA stop the
   * start with a ConfigError; an unreachable Kafka does not.
   */
  kafka(settings: Omit<ServiceKafkaOptions, 'service' | 'logger'>): Promise<Kafka>;
}

export interface ServiceKafkaOptions {
  service: string;
  brokers: string[];
  security: KafkaSecurity;
  logger: Logger;
  retry?: CreateKafkaOptions['retry'];
}

/** A service's Kafka client (clientId kaudit-<service>), its TLS/SASL settings verified before use. */
export async function serviceKafka(options: ServiceKafkaOptions): Promise<Kafka> {
  const { service, brokers, security, logger, retry } = options;
  const kafka = createKafka({
    clientId: `kaudit-${service}`,
    brokers,
    security,
    logger,
    ...(retry ? { retry } : {}),
  });
  await verifyKafkaSecurity(kafka, security);
  return kafka;
}

/** Logger and liveness of the caller's (tests) or the service's own. */
export interface ServiceDeps {
  logger?: Logger;
  liveness?: Liveness;
}

/** One shell for the four services: the shared wiring written once, the service's own in `start`. */
export function defineService(options: {
  name: string;
  logLevel?: string;
  deps?: ServiceDeps;
  /** The service's own logger (e.g. with more redaction paths); default createLogger. */
  createLogger?: () => Logger;
  timeoutMs?: number;
  start(context: ServiceContext): Promise<void>;
}): Service {
  const { name } = options;
  const logger =
    options.deps?.logger ??
    options.createLogger?.() ??
    createLogger({ service: name, ...(options.logLevel ? { level: options.logLevel } : {}) });
  const liveness = options.deps?.liveness ?? createLiveness({ logger });
  const steps: ShutdownStep[] = [];
  const context: ServiceContext = {
    logger,
    liveness,
    onStop: (step, run) => steps.push({ name: step, run: async () => run() }),
    kafka: (settings) => serviceKafka({ service: name, logger, ...settings }),
  };
  return {
    logger,
    liveness,
    steps,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    start: async () => {
      await options.start(context);
      reportStarted(); // to the primary, when this process is a worker of a pool (workers.ts)
    },
  };
}

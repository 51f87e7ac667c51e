import {
  createLiveness,
  createLogger,
  type Liveness,
  type Logger,
  type ShutdownStep,
} from '@kaudit/service-kit';
import { insecureWarnings, type SinkConfig } from './config';
import { startSink } from './sink';

export interface SinkService {
  logger: Logger;
  liveness: Liveness;
  /** Filled by start(): finish in-flight requests, stop the drainer, flush the producer, close the spool. */
  steps: ShutdownStep[];
  timeoutMs: number;
  start(): Promise<void>;
}

/**
 * The sink's wiring: logger and liveness here; sink.ts builds the rest (Kafka client, spool, producer,
 * drainer, app, HTTPS server) and is what tests and the benchmark start in-process.
 */
export function createSinkService(
  config: SinkConfig,
  deps: { logger?: Logger; liveness?: Liveness } = {},
): SinkService {
  const logger = deps.logger ?? createLogger({ service: 'sink', level: config.logLevel });
  const liveness = deps.liveness ?? createLiveness({ logger });
  const steps: ShutdownStep[] = [];
  return {
    logger,
    liveness,
    steps,
    timeoutMs: 30_000,
    async start() {
      for (const warning of insecureWarnings(config)) logger.warn({ SINK_INSECURE_DEV: true }, warning);
      const sink = await startSink(config, logger, { liveness });
      steps.push(...sink.steps);
    },
  };
}

import { kafkaSecurityError } from './kafka/access';
import { createLogger } from './logger';

/**
 * The shell of every service's main.ts: runs `main`, and turns the two ways a start can fail into one
 * JSON log line and exit code 1 — a ConfigError (every bad variable named, for the operator; a secured
 * Kafka refusing the credentials counts as one) or any other start-up failure (with its cause, for the
 * log). Never a raw stack trace on stderr alone.
 */
export function runService(service: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    const logger = createLogger({ service });
    // A ConfigError as it is; a secured Kafka refusing the password, CA or certificate becomes one.
    const configError = kafkaSecurityError(error);
    if (configError) {
      logger.fatal({ code: 'KAUDIT_ERR_CONFIG', problems: configError.problems }, configError.message);
      process.stderr.write(`kaudit ${service}: ${configError.message}\n`);
    } else {
      logger.fatal({ err: error }, `${service} failed to start`);
    }
    process.exit(1);
  });
}

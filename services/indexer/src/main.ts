import { ConfigError, createLogger, registerShutdown } from '@kaudit/service-kit';
import { loadIndexerConfig } from './config';
import { startIndexerService } from './service';

// Wiring only: configuration -> service -> shutdown.
async function main(): Promise<void> {
  let config: ReturnType<typeof loadIndexerConfig>;
  try {
    config = loadIndexerConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    createLogger({ service: 'indexer' }).fatal(
      { code: 'KAUDIT_ERR_CONFIG', problems: error.problems },
      error.message,
    );
    process.exit(1);
  }
  const logger = createLogger({ service: 'indexer', level: config.logLevel });
  const service = await startIndexerService(config, logger, {
    // kafkajs gave up restarting the consumer: release everything and exit non-zero to be restarted.
    onFatal: () => void service.stop().finally(() => process.exit(1)),
  });
  registerShutdown({ logger, steps: service.steps });
  logger.info({ opsPort: service.opsPort }, 'indexer running');
}

main().catch((error: unknown) => {
  createLogger({ service: 'indexer' }).fatal({ err: error }, 'indexer failed to start');
  process.exit(1);
});

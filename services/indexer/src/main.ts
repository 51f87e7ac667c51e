import {
  createLogger,
  registerShutdown,
  runService,
  suppressKafkajsTimeoutWarning,
} from '@kaudit/service-kit';
import { loadIndexerConfig } from './config';
import { startIndexerService } from './service';

suppressKafkajsTimeoutWarning();

runService('indexer', async () => {
  const config = loadIndexerConfig();
  const logger = createLogger({ service: 'indexer', level: config.logLevel });
  const service = await startIndexerService(config, logger, {
    // kafkajs gave up restarting the consumer: release everything and exit non-zero to be restarted.
    onFatal: () => void service.stop().finally(() => process.exit(1)),
  });
  registerShutdown({ logger, steps: service.steps });
  logger.info({ opsPort: service.opsPort }, 'indexer running');
});

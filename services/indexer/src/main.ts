import {
  createLiveness,
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
  const liveness = createLiveness({ logger });
  const service = await startIndexerService(config, logger, { liveness });
  registerShutdown({ logger, steps: service.steps, liveness });
  logger.info({ opsPort: service.opsPort }, 'indexer running');
});

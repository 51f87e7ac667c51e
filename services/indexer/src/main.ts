import { registerShutdown, runService, suppressKafkajsTimeoutWarning } from '@kaudit/service-kit';
import { loadIndexerConfig } from './config';
import { createIndexerService } from './service';

suppressKafkajsTimeoutWarning();

runService('indexer', async () => {
  const config = loadIndexerConfig();
  const service = createIndexerService(config);
  registerShutdown(service);
  await service.start();
});

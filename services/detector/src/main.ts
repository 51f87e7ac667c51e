import { registerShutdown, runService, suppressKafkajsTimeoutWarning } from '@kaudit/service-kit';
import { loadDetectorConfig } from './config';
import { createDetectorService } from './service';

suppressKafkajsTimeoutWarning();

runService('detector', async () => {
  const config = loadDetectorConfig();
  const service = createDetectorService(config);
  registerShutdown(service);
  await service.start();
});

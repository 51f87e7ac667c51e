import { registerShutdown, runService, suppressKafkajsTimeoutWarning } from '@kaudit/service-kit';
import { loadSinkConfig } from './config';
import { createSinkService } from './service';

suppressKafkajsTimeoutWarning();

runService('sink', async () => {
  const config = loadSinkConfig();
  const service = createSinkService(config);
  registerShutdown(service);
  await service.start();
});

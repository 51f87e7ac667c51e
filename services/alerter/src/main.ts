import { registerShutdown, runService, suppressKafkajsTimeoutWarning } from '@kaudit/service-kit';
import { loadAlerterConfig } from './config';
import { createAlerterService } from './service';

suppressKafkajsTimeoutWarning();

runService('alerter', async () => {
  const config = loadAlerterConfig();
  const service = createAlerterService(config);
  registerShutdown(service);
  await service.start();
});

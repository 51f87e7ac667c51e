import {
  createLiveness,
  createLogger,
  registerShutdown,
  runService,
  suppressKafkajsTimeoutWarning,
} from '@kaudit/service-kit';
import { insecureWarnings, loadSinkConfig } from './config';
import { startSink } from './sink';

suppressKafkajsTimeoutWarning();

runService('sink', async () => {
  const config = loadSinkConfig();
  const logger = createLogger({ service: 'sink', level: config.logLevel });
  for (const warning of insecureWarnings(config)) logger.warn({ SINK_INSECURE_DEV: true }, warning);
  const liveness = createLiveness({ logger });
  const sink = await startSink(config, logger, { liveness });
  registerShutdown({ logger, steps: sink.steps, timeoutMs: 30_000, liveness });
});

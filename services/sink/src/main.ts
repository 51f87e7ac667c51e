import { ConfigError, createLogger, registerShutdown } from '@kaudit/service-kit';
import { insecureWarnings, loadSinkConfig } from './config';
import { startSink } from './sink';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadSinkConfig>;
  try {
    config = loadSinkConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`kaudit sink: ${error.message}\n`);
    process.exit(1);
  }
  const logger = createLogger({ service: 'sink', level: config.logLevel });
  for (const warning of insecureWarnings(config)) logger.warn({ SINK_INSECURE_DEV: true }, warning);
  const sink = await startSink(config, logger);
  registerShutdown({ logger, steps: sink.steps, timeoutMs: 30_000 });
}

main().catch((error: unknown) => {
  process.stderr.write(`kaudit sink: failed to start: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});

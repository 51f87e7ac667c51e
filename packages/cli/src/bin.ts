#!/usr/bin/env node
import { Command } from 'commander';
import { registerDetect } from './commands/detect';
import { registerEsSetup } from './commands/es-setup';
import { registerSend } from './commands/send';

// `pnpm kaudit <command>`: each command lives in its own file under commands/ and registers itself.
const program = new Command('kaudit').description('Kubernetes audit-log analytics').showHelpAfterError();
registerDetect(program);
registerSend(program);
registerEsSetup(program);
program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`kaudit: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

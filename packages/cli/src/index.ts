// Library entry of the CLI, for tests and tools that drive the same code as the commands.
export { createWebhookClient, sendFiles, sendItems } from './commands/send';
export { readAuditFiles } from './read-audit-files';

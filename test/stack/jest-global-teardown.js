// Stops the stack only if the global setup started it; a stack the developer started stays up.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

module.exports = async () => {
  if (!globalThis.__kauditStackStartedByJest || process.env.KAUDIT_STACK_KEEP === 'true') return;
  execFileSync('bash', [path.join(__dirname, 'stack.sh'), 'down'], { stdio: 'inherit' });
};

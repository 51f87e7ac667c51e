/**
 * kafkajs 2.2.4 sets negative timers on Node >= 24, which prints a TimeoutNegativeWarning for every
 * client (harmless; tulios/kafkajs#1751). The console commands drop that one warning to stay readable.
 */
export function quietKafkajsTimerWarning(): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name !== 'TimeoutNegativeWarning')
      process.stderr.write(`${warning.name}: ${warning.message}\n`);
  });
}

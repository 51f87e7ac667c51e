import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths that must never appear in a log line, whatever a caller passes: secret payloads of audit
 * events, tokens, credentials, webhook URLs (a Slack webhook URL is a credential).
 */
export const REDACT_PATHS = [
  '*.data',
  '*.stringData',
  '*.token',
  '*.password',
  '*.apiKey',
  '*.authorization',
  '*.webhookUrl',
  '*.hmacKey',
  'req.headers.authorization',
  'headers.authorization',
  'config.esPassword',
  'config.esApiKey',
  // Raw kafkajs client options, should one ever be logged (KafkaSecurity itself logs as its description).
  'sasl.password',
  '*.sasl.password',
  'ssl.key',
  '*.ssl.key',
];

export function createLogger(options: { service: string; level?: string }): Logger {
  return pino({
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { service: options.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  });
}

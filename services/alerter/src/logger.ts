import { createLogger, type Logger, REDACT_PATHS } from '@kaudit/service-kit';

/**
 * Fields the alerter could be tempted to log that hold credentials, on top of service-kit's list: a
 * Slack webhook URL is a credential, and so are request headers towards HEC. (Secrets are also held in
 * `Secret` objects that print as [redacted]; this is the second lock.)
 */
export const ALERTER_REDACT_PATHS = [
  '*.url',
  '*.urlFrom',
  '*.secret',
  '*.secrets',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.headers["X-Kaudit-Signature"]',
];

export function createAlerterLogger(level: string): Logger {
  // A child's redact option replaces the parent's, so it carries service-kit's paths as well.
  return createLogger({ service: 'alerter', level }).child(
    {},
    { redact: { paths: [...REDACT_PATHS, ...ALERTER_REDACT_PATHS], censor: '[redacted]' } },
  );
}

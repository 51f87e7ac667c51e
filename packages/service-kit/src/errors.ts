/** AppError and the catalog live in @kaudit/common so the CLI and es-resources throw them too. */
export {
  AppError,
  type AppErrorOptions,
  ERROR_CODES,
  type ErrorCode,
  isAppError,
} from '@kaudit/common';

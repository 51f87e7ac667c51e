import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Default location of a shipped policy file (`policies/<name>`): under the working directory when it has
 * one (the Docker images run from /app; `pnpm start` from the repository root), else the repository's
 * own `policies/` (so `pnpm --filter @kaudit/<service> start`, which runs from the service's folder, finds
 * it too). Returned relative to the working directory when possible, for readable log lines.
 */
export function defaultPolicyPath(name: string): string {
  const fromCwd = join('policies', name);
  if (existsSync(fromCwd)) return fromCwd;
  const fromRepo = join(__dirname, '../../../policies', name);
  return existsSync(fromRepo) ? relative(process.cwd(), fromRepo) : fromCwd;
}

import { existsSync, readFileSync } from 'node:fs';
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

/**
 * For a config loader: reads and parses the file a variable names, turning either failure into one
 * problem named after the variable — `<VAR>: cannot read <file> (<errno code>)` or `<VAR>: <the parser's
 * message>` — so the ConfigError lists it with every other bad setting. Undefined when it failed.
 */
export function readPolicyFile<T>(options: {
  variable: string;
  file: string;
  problems: string[];
  parse: (text: string, file: string) => T;
  readFile?: (path: string) => string;
}): T | undefined {
  const { variable, file, problems } = options;
  let text: string;
  try {
    text = (options.readFile ?? ((path) => readFileSync(path, 'utf8')))(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    problems.push(`${variable}: cannot read ${file} (${reason})`);
    return undefined;
  }
  try {
    return options.parse(text, file);
  } catch (error) {
    problems.push(`${variable}: ${(error as Error).message}`);
    return undefined;
  }
}

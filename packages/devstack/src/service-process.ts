import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { dirname } from 'node:path';

/** One kaudit service running as its own process, its JSON logs going to a file. */
export interface ServiceProcess {
  name: string;
  pid: number;
  logFile: string;
  /** Where /readyz answers. */
  readyUrl: string;
  /** The last lines it wrote, for error messages. */
  tail(): string;
  /** Whether it has exited (and how). */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGTERM, then SIGKILL after timeoutMs; resolves when it is gone. */
  stop(timeoutMs?: number): Promise<void>;
  /** Sends `signal` (a crash: SIGKILL) and resolves when the process is gone. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

export interface SpawnServiceOptions {
  name: string;
  /** The service's compiled entry point (services/<name>/dist/main.js). */
  entry: string;
  cwd: string;
  env: Record<string, string>;
  logFile: string;
  readyUrl: string;
  /** PEM CA to verify an https readyUrl. */
  ca?: Buffer;
}

const TAIL_LINES = 40;
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Last resort if the parent dies without stopping: no orphaned service keeps ports and groups. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

export function spawnService(options: SpawnServiceOptions): ServiceProcess {
  if (!existsSync(options.entry)) {
    throw new Error(`${options.entry} does not exist: run pnpm build first`);
  }
  mkdirSync(dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  // Its own process group: a Ctrl-C in the terminal reaches the parent only, which then stops each
  // service once (a second signal would make a service skip its graceful shutdown).
  const child = spawn(process.execPath, [options.entry], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  installExitHook();
  running.add(child);
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(line);
    if (lines.length > TAIL_LINES) lines.splice(0, lines.length - TAIL_LINES);
  };
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', (chunk: Buffer) => {
      keep(chunk);
      log.write(chunk);
    });
  }
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      running.delete(child);
      resolve();
    });
  });
  exited.then(() => log.end());
  if (child.pid === undefined) throw new Error(`${options.name} could not be started`);

  return {
    name: options.name,
    pid: child.pid,
    logFile: options.logFile,
    readyUrl: options.readyUrl,
    tail: () => lines.join('\n'),
    exited: () => exit,
    async stop(timeoutMs = 20_000) {
      if (exit) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
    async kill(signal) {
      if (exit) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** GET url and resolve with the status code (0 when nothing answered). */
export function httpStatus(url: string, ca?: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    const request = get(url, { timeout: 2000, ...(ca ? { ca } : {}) }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(0));
  });
}

/** Polls /readyz until it answers 200; fails early (with its last log lines) if the process exits. */
export async function waitUntilReady(service: ServiceProcess, timeoutMs: number, ca?: Buffer): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exit = service.exited();
    if (exit) {
      throw new Error(
        `${service.name} exited (${exit.signal ?? `code ${exit.code}`}) before it was ready; last lines of ${service.logFile}:\n${service.tail()}`,
      );
    }
    if ((await httpStatus(service.readyUrl, ca)) === 200) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${service.name} was not ready within ${timeoutMs} ms (${service.readyUrl}); last lines of ${service.logFile}:\n${service.tail()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

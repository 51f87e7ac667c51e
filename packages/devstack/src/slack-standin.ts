import { appendFile, mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';

/** One POST the stand-in received, as logged (one JSON line each) and kept in memory. */
export interface SlackMessage {
  receivedAt: string;
  /** Path of the webhook URL it was posted to (the Slack stand-in accepts any). */
  path: string;
  /** The parsed JSON body (Block Kit payload), or the raw text when it was not JSON. */
  body: unknown;
}

export interface SlackStandin {
  /** Incoming-webhook URL to give the alerter. */
  url: string;
  port: number;
  /** Everything received so far, in arrival order. */
  readonly messages: readonly SlackMessage[];
  /**
   * While set, every POST is answered with this status (e.g. 500: Slack having an outage) and counted
   * in `refused`, not recorded as a message; undefined answers 200 again.
   */
  failWith(status: number | undefined): void;
  /** POSTs answered with the failWith status so far. */
  readonly refused: number;
  /** Resolves once at least `count` messages arrived; rejects after timeoutMs. */
  waitForMessages(count: number, timeoutMs?: number): Promise<readonly SlackMessage[]>;
  close(): Promise<void>;
}

export interface SlackStandinOptions {
  port?: number;
  host?: string;
  /** Appends one JSON line per message here (e.g. .kaudit/logs/slack.log). */
  logFile?: string;
  /** Path the webhook URL carries, like Slack's /services/T…/B…/…. */
  webhookPath?: string;
}

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * A local HTTP server standing in for a Slack incoming webhook: answers 200 "ok" like Slack does, and
 * records what it got, so `pnpm start` users can read the alerts in a log and tests can assert on them.
 */
export async function startSlackStandin(options: SlackStandinOptions = {}): Promise<SlackStandin> {
  const host = options.host ?? '127.0.0.1';
  const webhookPath = options.webhookPath ?? '/services/TKAUDIT/BKAUDIT/local-standin';
  const messages: SlackMessage[] = [];
  const waiters = new Set<() => void>();
  let failure: number | undefined;
  let refused = 0;
  if (options.logFile) await mkdir(dirname(options.logFile), { recursive: true });

  const record = async (message: SlackMessage) => {
    messages.push(message);
    if (options.logFile) await appendFile(options.logFile, `${JSON.stringify(message)}\n`);
    for (const wake of waiters) wake();
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    if (request.method !== 'POST') {
      response.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain' }).end('method_not_allowed');
      return;
    }
    if (failure !== undefined) {
      refused += 1;
      request.resume();
      response.writeHead(failure, { 'Content-Type': 'text/plain' }).end('standin_failure');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) {
        response.writeHead(413, { 'Content-Type': 'text/plain' }).end('request_too_large');
        return;
      }
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Slack answers 400 invalid_payload; so does the stand-in, but it still logs what it got.
      await record({ receivedAt: new Date().toISOString(), path: request.url ?? '/', body });
      response.writeHead(400, { 'Content-Type': 'text/plain' }).end('invalid_payload');
      return;
    }
    await record({ receivedAt: new Date().toISOString(), path: request.url ?? '/', body });
    response.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
  };

  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500).end('internal_error');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${host}:${port}${webhookPath}`,
    port,
    messages,
    failWith(status) {
      failure = status;
    },
    get refused() {
      return refused;
    },
    waitForMessages(count, timeoutMs = 30_000) {
      if (messages.length >= count) return Promise.resolve(messages);
      return new Promise((resolve, reject) => {
        const wake = () => {
          if (messages.length < count) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(messages);
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`Slack stand-in: ${messages.length} of ${count} messages after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

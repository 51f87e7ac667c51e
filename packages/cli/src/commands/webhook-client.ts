import http from 'node:http';
import https from 'node:https';
import { backoffDelayMs as backoff, parseRetryAfterMs } from '@kaudit/common';

/**
 * The HTTP(S) side of `kaudit send`: one keep-alive agent, a client certificate and/or a bearer token,
 * one EventList POST per call, and the classification of the answer (retriable or not, Retry-After, the
 * receiver's accepted/rejected counts). batches.ts decides what to post and when to retry.
 */

export interface RetryBudget {
  /** Attempts in all, the first included. */
  attempts: number;
  initialDelayMs: number;
  factor: number;
  /** Fraction of random extra delay (0.2 = up to 20 % longer), so senders do not retry in lockstep. */
  jitter: number;
  /** A Retry-After longer than this is not waited for: the batch fails. */
  maxRetryAfterMs: number;
}

/** The API server's webhook backoff: 10 s, ×1.5, 5 attempts, jitter 0.2. */
export const API_SERVER_RETRY: RetryBudget = {
  attempts: 5,
  initialDelayMs: 10_000,
  factor: 1.5,
  jitter: 0.2,
  maxRetryAfterMs: 10 * 60_000,
};

export interface WebhookOptions {
  /** Endpoint, e.g. https://127.0.0.1:8443/audit. */
  url: string;
  /** PEM contents (not paths) of the client certificate, its key, and the CA to trust. */
  cert?: string | Buffer;
  key?: string | Buffer;
  ca?: string | Buffer;
  token?: string;
  /** Per attempt; the API server waits 30 s. */
  timeoutMs?: number;
  /** Batches in flight at once. */
  concurrency?: number;
  userAgent?: string;
}

export interface BatchReply {
  status: number;
  /** Events the receiver accepted / rejected (dead-lettered), when its reply says so. */
  accepted: number;
  rejected: number;
  body: unknown;
}

export class SendError extends Error {
  constructor(
    message: string,
    readonly retriable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'SendError';
  }
}

/** Statuses kube-apiserver counts as success. */
const isSuccess = (status: number) => status >= 200 && status <= 206;
const isRetriableStatus = (status: number) =>
  status >= 500 || status === 408 || status === 425 || status === 429;

export interface WebhookClient {
  /** One attempt: POSTs the items (each already JSON) as an EventList; throws SendError unless 200-206. */
  post(serializedItems: readonly string[]): Promise<BatchReply>;
  close(): void;
}

export function createWebhookClient(options: WebhookOptions): WebhookClient {
  const url = new URL(options.url);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new SendError(`--to must be an http(s) URL (got ${options.url})`, false);
  }
  if (url.search) {
    // kube-apiserver drops query strings from the webhook URL; a token there would be lost (or leaked).
    throw new SendError('--to must not carry a query string: use --token-file for a bearer token', false);
  }
  const secure = url.protocol === 'https:';
  const concurrency = options.concurrency ?? 1;
  const agent = secure
    ? new https.Agent({
        keepAlive: true,
        maxSockets: concurrency,
        ...(options.cert ? { cert: options.cert } : {}),
        ...(options.key ? { key: options.key } : {}),
        ...(options.ca ? { ca: options.ca } : {}),
      })
    : new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    Accept: 'application/json',
    'User-Agent': options.userAgent ?? 'kaudit-send',
  };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;

  const post = (serializedItems: readonly string[]): Promise<BatchReply> => {
    const body = eventListBody(serializedItems);
    return new Promise<BatchReply>((resolve, reject) => {
      const request = (secure ? https : http).request(url, {
        method: 'POST',
        agent,
        headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
        timeout: timeoutMs,
      });
      request.once('timeout', () =>
        request.destroy(new SendError(`no answer from ${url.origin} within ${timeoutMs} ms`, true)),
      );
      request.once('error', (error) => {
        if (error instanceof SendError) return reject(error);
        const code = (error as NodeJS.ErrnoException).code;
        // TLS problems are configuration problems: retrying will not fix a wrong CA or certificate.
        const tls = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO|HOSTNAME|ALTNAME/i.test(
          `${code ?? ''} ${error.message}`,
        );
        reject(new SendError(`${url.origin}: ${error.message}${code ? ` (${code})` : ''}`, !tls));
      });
      request.once('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('error', (error) => reject(new SendError(`${url.origin}: ${error.message}`, true)));
        response.once('end', () => {
          const status = response.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          const parsed = parseJson(text);
          if (isSuccess(status)) {
            resolve({ status, ...countsOf(parsed, serializedItems.length), body: parsed ?? text });
            return;
          }
          // Sinks before the 200-with-counts answer sent 400 to a batch with no valid event, having
          // dead-lettered every item: received, its events rejected. Not a delivery failure; no retry helps.
          if (status === 400 && hasCounts(parsed)) {
            resolve({ status, ...countsOf(parsed, serializedItems.length), body: parsed });
            return;
          }
          const retryAfterMs = parseRetryAfterMs(response.headers['retry-after']);
          const reason = describeFailure(parsed, text);
          reject(
            new SendError(
              `${url.origin}${url.pathname} answered ${status}${reason ? `: ${reason}` : ''}`,
              isRetriableStatus(status),
              status,
              retryAfterMs,
            ),
          );
        });
      });
      request.end(body);
    });
  };

  return { post, close: () => agent.destroy() };
}

function eventListBody(serializedItems: readonly string[]): string {
  return `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[${serializedItems.join(',')}]}`;
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

function hasCounts(body: unknown): boolean {
  const reply = body as { accepted?: unknown; rejected?: unknown } | undefined;
  return typeof reply?.accepted === 'number' && typeof reply.rejected === 'number';
}

/** The sink replies { accepted, rejected, ... }; another receiver's 2xx counts every event as accepted. */
function countsOf(body: unknown, sent: number): { accepted: number; rejected: number } {
  const reply = (body ?? {}) as { accepted?: unknown; rejected?: unknown };
  const accepted = typeof reply.accepted === 'number' ? reply.accepted : undefined;
  const rejected = typeof reply.rejected === 'number' ? reply.rejected : undefined;
  if (accepted === undefined && rejected === undefined) return { accepted: sent, rejected: 0 };
  return { accepted: accepted ?? sent - (rejected ?? 0), rejected: rejected ?? sent - (accepted ?? 0) };
}

/** The sink's error answers are {error: {code, message}}; other receivers' {message} or plain text. */
function describeFailure(body: unknown, text: string): string {
  const outer = body as { error?: unknown } | undefined;
  const inner = typeof outer?.error === 'object' && outer.error !== null ? outer.error : body;
  const reply = inner as { message?: unknown; error?: unknown; code?: unknown } | undefined;
  const message =
    typeof reply?.message === 'string'
      ? reply.message
      : typeof reply?.error === 'string'
        ? reply.error
        : undefined;
  const code = typeof reply?.code === 'string' ? `${reply.code}: ` : '';
  const excerpt = message ?? text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return excerpt ? `${code}${excerpt}` : '';
}

/** Kept for importers of this module: Retry-After is parsed once, in @kaudit/common. */
export { parseRetryAfterMs };

/** Delay before attempt `attempt + 1` (attempt counts from 1): the server's Retry-After wins when it sent one. */
export function backoffDelayMs(
  budget: RetryBudget,
  attempt: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return retryAfterMs;
  return backoff(attempt - 1, { ...budget, jitter: budget.jitter, random });
}

import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { AppError, backoffDelayMs as backoff, sleep as commonSleep, parseRetryAfterMs } from '@kaudit/common';
import { SingleBar } from 'cli-progress';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type ReadAuditFilesOptions, readAuditFiles } from '../read-audit-files';

/**
 * `kaudit send`: replays audit logs into a kaudit sink (or any audit webhook) the way kube-apiserver's
 * batch webhook backend would: EventList bodies of at most 400 events, application/json, a client
 * certificate and/or a bearer token, and retries with backoff (10 s ×1.5, 5 attempts, like the API
 * server), honouring Retry-After on 429/5xx. Unlike the API server, it stops at once on answers a retry
 * cannot change (400, 401, 403, 404, 413, 415) and never drops a batch silently: it exits non-zero.
 */

export const MAX_BATCH_EVENTS = 400;
/** kube-apiserver's --audit-webhook-truncate-max-batch-size default: a batch never grows past it. */
export const MAX_BATCH_BYTES = 10 * 1024 * 1024;

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

export interface SendProgress {
  batches: number;
  events: number;
  /** JSON bytes of the events delivered. */
  bytes: number;
}

export interface SendItemsOptions extends WebhookOptions {
  batchSize?: number;
  maxBatchBytes?: number;
  retry?: Partial<RetryBudget>;
  signal?: AbortSignal;
  onRetry?(info: { attempt: number; delayMs: number; error: SendError; events: number }): void;
  /** After each delivered batch. */
  onProgress?(progress: SendProgress): void;
  /** Waits between retries; tests inject a fake. */
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
  /** Posts the batches; defaults to an HTTP(S) client for `url` (tests inject a fake). */
  client?: WebhookClient;
}

export interface SendSummary {
  batches: number;
  /** Events posted in batches the receiver answered 2xx. */
  sent: number;
  accepted: number;
  rejected: number;
  /** Attempts that failed and were retried. */
  retries: number;
}

export class DeliveryFailedError extends Error {
  constructor(
    message: string,
    readonly summary: SendSummary,
    override readonly cause: SendError,
  ) {
    super(message);
    this.name = 'DeliveryFailedError';
  }
}

/**
 * Sends raw audit events (anything JSON; the receiver validates) in EventList batches, `concurrency`
 * batches in flight at once. Resolves with what the receiver said; rejects with DeliveryFailedError as
 * soon as one batch fails for good (its budget spent, or an answer a retry cannot change).
 */
export async function sendItems(
  items: AsyncIterable<unknown> | Iterable<unknown>,
  options: SendItemsOptions,
): Promise<SendSummary> {
  const batchSize = options.batchSize ?? MAX_BATCH_EVENTS;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_EVENTS) {
    throw new SendError(`batch size must be 1-${MAX_BATCH_EVENTS} (the API server's maximum)`, false);
  }
  const maxBatchBytes = options.maxBatchBytes ?? MAX_BATCH_BYTES;
  const budget: RetryBudget = { ...API_SERVER_RETRY, ...options.retry };
  const sleep = options.sleep ?? commonSleep;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const client = options.client ?? createWebhookClient({ ...options, concurrency });
  const summary: SendSummary = { batches: 0, sent: 0, accepted: 0, rejected: 0, retries: 0 };
  const progress: SendProgress = { batches: 0, events: 0, bytes: 0 };
  const inFlight = new Set<Promise<void>>();
  let failure: DeliveryFailedError | undefined;

  const deliver = async (serialized: string[], bytes: number) => {
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await client.post(serialized);
        summary.batches += 1;
        summary.sent += serialized.length;
        summary.accepted += reply.accepted;
        summary.rejected += reply.rejected;
        progress.batches += 1;
        progress.events += serialized.length;
        progress.bytes += bytes;
        options.onProgress?.({ ...progress });
        return;
      } catch (error) {
        const sendError = error instanceof SendError ? error : new SendError(String(error), true);
        const tooLong =
          sendError.retryAfterMs !== undefined && sendError.retryAfterMs > budget.maxRetryAfterMs;
        if (
          !sendError.retriable ||
          attempt >= budget.attempts ||
          tooLong ||
          options.signal?.aborted ||
          failure
        ) {
          const why = !sendError.retriable
            ? 'a retry cannot change this answer'
            : tooLong
              ? `Retry-After ${Math.round(sendError.retryAfterMs! / 1000)} s exceeds the ${Math.round(budget.maxRetryAfterMs / 1000)} s limit`
              : `gave up after ${attempt} attempt${attempt === 1 ? '' : 's'}`;
          failure ??= new DeliveryFailedError(
            `a batch of ${serialized.length} events was not delivered (${why}): ${sendError.message}`,
            summary,
            sendError,
          );
          return;
        }
        const delayMs = backoffDelayMs(budget, attempt, sendError.retryAfterMs);
        summary.retries += 1;
        options.onRetry?.({ attempt, delayMs, error: sendError, events: serialized.length });
        await sleep(delayMs, options.signal).catch(() => undefined);
      }
    }
  };

  const dispatch = async (serialized: string[], bytes: number) => {
    const task = deliver(serialized, bytes).finally(() => inFlight.delete(task));
    inFlight.add(task);
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
  };

  try {
    let batch: string[] = [];
    let batchBytes = 0;
    for await (const item of items) {
      if (failure || options.signal?.aborted) break;
      const text = JSON.stringify(item);
      const bytes = Buffer.byteLength(text) + 1;
      if (batch.length > 0 && (batch.length >= batchSize || batchBytes + bytes > maxBatchBytes)) {
        await dispatch(batch, batchBytes);
        batch = [];
        batchBytes = 0;
      }
      batch.push(text);
      batchBytes += bytes;
    }
    if (batch.length > 0 && !failure && !options.signal?.aborted) await dispatch(batch, batchBytes);
    await Promise.all(inFlight);
  } finally {
    client.close();
  }
  if (failure) throw failure;
  if (options.signal?.aborted)
    throw new DeliveryFailedError('interrupted', summary, new SendError('interrupted', false));
  return summary;
}

export interface SendFilesResult extends SendSummary {
  /** Lines or records that could not be read as JSON: reported, not sent. */
  unreadable: number;
}

/**
 * Sends audit log files (JSON lines, EventList JSON, '-' for stdin: whatever `kaudit detect` reads).
 * Unreadable records are reported through onUnreadable and counted; they cannot be sent.
 */
export interface SendFilesOptions extends SendItemsOptions, ReadAuditFilesOptions {
  onUnreadable?(record: { file: string; line: number; error: string }): void;
}

export async function sendFiles(
  files: readonly string[],
  options: SendFilesOptions,
): Promise<SendFilesResult> {
  let unreadable = 0;
  const readOptions: ReadAuditFilesOptions = {
    ...(options.stdin ? { stdin: options.stdin } : {}),
    ...(options.onBytes ? { onBytes: options.onBytes } : {}),
  };
  async function* items() {
    for await (const record of readAuditFiles(files, readOptions)) {
      if ('error' in record) {
        unreadable += 1;
        options.onUnreadable?.({ file: record.file, line: record.line, error: record.error });
        continue;
      }
      yield record.raw;
    }
  }
  try {
    const summary = await sendItems(items(), options);
    return { ...summary, unreadable };
  } catch (error) {
    if (error instanceof DeliveryFailedError) Object.assign(error.summary, { unreadable });
    throw error;
  }
}

/** Larger inputs than this get a progress bar (when stderr is a terminal). */
const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;

interface SendCommandOptions {
  to: string;
  cert?: string;
  key?: string;
  cacert?: string;
  tokenFile?: string;
  batchSize: number;
  cluster?: string;
  concurrency: number;
  retries: number;
  timeout: number;
}

const positiveInt =
  (name: string, max = Number.MAX_SAFE_INTEGER) =>
  (value: string) => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < 1 || number > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}`);
    }
    return number;
  };

function readPem(flag: string, file: string | undefined): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (error) {
    throw new AppError(
      'KAUDIT_ERR_INPUT',
      `${flag} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      { cause: error },
    );
  }
}

/** --to plus --cluster: the sink's /audit/:cluster route. */
export function targetUrl(to: string, cluster: string | undefined): string {
  if (!cluster) return to;
  const url = new URL(to);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${encodeURIComponent(cluster)}`;
  return url.toString();
}

export function registerSend(program: Command): void {
  program
    .command('send')
    .description(
      'Send audit log files to an audit webhook (the kaudit sink) as kube-apiserver does: EventList batches, ' +
        'client certificate and/or bearer token, retries with backoff. Exit 0: all accepted; 2: delivered, ' +
        'but some events were rejected or unreadable; 1: a batch could not be delivered.',
    )
    .argument('<files...>', "audit log files (JSON lines, EventList JSON); '-' reads stdin")
    .requiredOption('--to <url>', 'webhook URL, e.g. https://127.0.0.1:8443/audit')
    .option('--cert <file>', 'client certificate (PEM) for mTLS')
    .option('--key <file>', 'private key of the client certificate (PEM)')
    .option('--cacert <file>', 'CA bundle (PEM) that signed the server certificate')
    .option('--token-file <file>', 'file holding a bearer token')
    .addOption(
      new Option('--batch-size <n>', `events per request (at most ${MAX_BATCH_EVENTS})`)
        .default(MAX_BATCH_EVENTS)
        .argParser(positiveInt('--batch-size', MAX_BATCH_EVENTS)),
    )
    .option('--cluster <name>', 'cluster the events belong to (posts to <url>/<name>)')
    .addOption(
      new Option('--concurrency <n>', 'batches in flight at once')
        .default(1)
        .argParser(positiveInt('--concurrency', 64)),
    )
    .addOption(
      new Option('--retries <n>', 'attempts per batch, the first included (the API server makes 5)')
        .default(API_SERVER_RETRY.attempts)
        .argParser(positiveInt('--retries', 100)),
    )
    .addOption(
      new Option('--timeout <seconds>', 'per request').default(30).argParser(positiveInt('--timeout', 600)),
    )
    .action(async (files: string[], options: SendCommandOptions) => {
      process.exitCode = await runSend(files, options);
    });
}

async function runSend(files: string[], options: SendCommandOptions): Promise<number> {
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new AppError('KAUDIT_ERR_CONFIG', '--cert and --key go together');
  }
  const token = options.tokenFile
    ? readPem('--token-file', options.tokenFile)?.toString('utf8').trim()
    : undefined;
  if (options.tokenFile && !token)
    throw new AppError('KAUDIT_ERR_CONFIG', `--token-file ${options.tokenFile} is empty`);
  const cert = readPem('--cert', options.cert);
  const key = readPem('--key', options.key);
  const ca = readPem('--cacert', options.cacert);
  const url = targetUrl(options.to, options.cluster);

  const totalBytes = await inputBytes(files);
  const bar =
    process.stderr.isTTY && totalBytes >= PROGRESS_MIN_BYTES
      ? new SingleBar({
          format: 'sending [{bar}] {percentage}% | {events} events | {batches} batches | ETA {eta_formatted}',
          stream: process.stderr,
          hideCursor: true,
        })
      : undefined;
  bar?.start(totalBytes, 0, { events: 0, batches: 0 });
  const say = (text: string) => {
    if (bar) process.stderr.write('\n');
    process.stderr.write(`${text}\n`);
  };
  const readByFile = new Map<string, number>();
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);

  try {
    const result = await sendFiles(files, {
      url,
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(ca ? { ca } : {}),
      ...(token ? { token } : {}),
      batchSize: options.batchSize,
      concurrency: options.concurrency,
      timeoutMs: options.timeout * 1000,
      retry: { attempts: options.retries },
      signal: controller.signal,
      onUnreadable: ({ file, line, error }) => say(`kaudit send: ${file}:${line}: skipped: ${error}`),
      onRetry: ({ attempt, delayMs, error }) =>
        say(
          `kaudit send: attempt ${attempt} failed (${error.message}); retrying in ${(delayMs / 1000).toFixed(1)} s`,
        ),
      onBytes: (file, bytesRead) => {
        readByFile.set(file, bytesRead);
        let read = 0;
        for (const bytes of readByFile.values()) read += bytes;
        bar?.update(Math.min(read, totalBytes));
      },
      onProgress: (progress) => bar?.update({ events: progress.events, batches: progress.batches }),
    });
    bar?.update(totalBytes);
    bar?.stop();
    process.stdout.write(`${formatSummary(result)}\n`);
    return result.rejected > 0 || result.unreadable > 0 ? 2 : 0;
  } catch (error) {
    bar?.stop();
    if (!(error instanceof DeliveryFailedError)) throw error;
    process.stdout.write(`${formatSummary(error.summary as SendFilesResult)}\n`);
    process.stderr.write(`kaudit send: ${error.message}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
  }
}

async function inputBytes(files: readonly string[]): Promise<number> {
  let total = 0;
  for (const file of files) {
    if (file === '-') continue;
    total += (await stat(file).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

export function formatSummary(result: SendSummary & { unreadable?: number }): string {
  const parts = [
    `sent ${result.sent} events in ${result.batches} batches`,
    `accepted ${result.accepted}`,
    `rejected ${result.rejected}`,
  ];
  if (result.unreadable !== undefined) parts.push(`unreadable ${result.unreadable}`);
  if (result.retries > 0) parts.push(`retried ${result.retries} times`);
  return parts.join(', ');
}

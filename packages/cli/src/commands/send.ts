import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { AppError } from '@kaudit/common';
import { SingleBar } from 'cli-progress';
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  DeliveryFailedError,
  MAX_BATCH_EVENTS,
  type SendFilesResult,
  type SendSummary,
  sendFiles,
} from './batches';
import { API_SERVER_RETRY } from './webhook-client';

export * from './batches';
export * from './webhook-client';

/**
 * `kaudit send`: replays audit logs into a kaudit sink (or any audit webhook) the way kube-apiserver's
 * batch webhook backend would: EventList bodies of at most 400 events, application/json, a client
 * certificate and/or a bearer token, and retries with backoff (10 s ×1.5, 5 attempts, like the API
 * server), honouring Retry-After on 429/5xx. Unlike the API server, it stops at once on answers a retry
 * cannot change (400, 401, 403, 404, 413, 415) and never drops a batch silently: it exits non-zero.
 */

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
    .option(
      '--cluster <name>',
      'cluster the events belong to (posts to <url>/<name>); without it, the cluster the input names (CloudWatch log group, AKS resourceId, GKE resource label), else <url> as it is',
    )
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
      // --cluster names the cluster of everything; without it, the input's own cluster names, else /audit.
      ...(options.cluster ? {} : { urlForCluster: (cluster: string) => targetUrl(options.to, cluster) }),
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

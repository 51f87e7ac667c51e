import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { sourceFixture, sourceFixturesDir } from '@kaudit/testkit';
import { Command } from 'commander';
import { DeliveryFailedError, registerSend, sendFiles, sendItems } from './send';

// A local HTTPS server playing the sink: mTLS against a CA made here with openssl, and a bearer token.
const dir = mkdtempSync(join(tmpdir(), 'kaudit-send-'));
const file = (name: string) => join(dir, name);

function openssl(args: string[]) {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

function makePki(prefix: string) {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = [file(`${prefix}ca.crt`), file(`${prefix}ca.key`)] as const;
  openssl([
    'req',
    '-x509',
    ...key,
    '-keyout',
    ca[1],
    '-out',
    ca[0],
    '-days',
    '2',
    '-subj',
    `/CN=${prefix}test CA`,
  ]);
  const issue = (name: string, ext: string) => {
    writeFileSync(file(`${prefix}${name}.ext`), `${ext}\n`);
    openssl([
      'req',
      ...key,
      '-keyout',
      file(`${prefix}${name}.key`),
      '-out',
      file(`${prefix}${name}.csr`),
      '-subj',
      `/CN=${name}`,
    ]);
    openssl([
      'x509',
      '-req',
      '-in',
      file(`${prefix}${name}.csr`),
      '-CA',
      ca[0],
      '-CAkey',
      ca[1],
      '-CAcreateserial',
      '-out',
      file(`${prefix}${name}.crt`),
      '-days',
      '2',
      '-extfile',
      file(`${prefix}${name}.ext`),
    ]);
  };
  issue('server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  issue('apiserver', 'extendedKeyUsage=clientAuth');
}

interface Received {
  path: string | undefined;
  contentType: string | undefined;
  authorization: string | undefined;
  clientCN: string | undefined;
  body: { kind: string; apiVersion: string; items: Array<{ auditID: string }> };
}

type Handler = (request: Received, response: ServerResponse) => void;

let server: Server;
let url: string;
let handler: Handler;
const received: Received[] = [];
const TOKEN = 'test-token-0123456789';

beforeAll(async () => {
  makePki('');
  makePki('other-');
  writeFileSync(file('token'), `${TOKEN}\n`);
  server = createServer(
    {
      cert: readFileSync(file('server.crt')),
      key: readFileSync(file('server.key')),
      ca: readFileSync(file('ca.crt')),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (request: IncomingMessage, response: ServerResponse) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const peer = (request.socket as TLSSocket).getPeerCertificate();
        const entry: Received = {
          path: request.url,
          contentType: request.headers['content-type'],
          authorization: request.headers.authorization,
          clientCN: typeof peer.subject?.CN === 'string' ? peer.subject.CN : undefined,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        };
        received.push(entry);
        handler(entry, response);
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/audit`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  received.length = 0;
  handler = (request, response) => {
    response.writeHead(200, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify({ accepted: request.body.items.length, rejected: 0 }));
  };
});

const tls = () => ({
  cert: readFileSync(file('apiserver.crt')),
  key: readFileSync(file('apiserver.key')),
  ca: readFileSync(file('ca.crt')),
});
const events = (n: number) => Array.from({ length: n }, (_, i) => ({ auditID: `id-${i}` }));

describe('cli > send > managed-cluster files', () => {
  it('posts each event to the cluster its input names, gzip or not, one lane per cluster', async () => {
    const gz = file('gke.jsonl.gz');
    writeFileSync(gz, gzipSync(sourceFixture('gke-log-entries.jsonl')));
    const aks = join(sourceFixturesDir, 'aks-records.jsonl');
    const base = url;
    const summary = await sendFiles([aks, gz, join(sourceFixturesDir, 'eks-subscription-payload.b64')], {
      url: base,
      ...tls(),
      urlForCluster: (cluster) => `${base}/${cluster}`,
    });
    // The CloudWatch event cut short is unreadable (it can never be parsed); the rest is sent.
    expect(summary).toMatchObject({ sent: 10, accepted: 10, unreadable: 1 });
    const byPath = new Map<string, number>();
    for (const r of received) byPath.set(r.path ?? '', (byPath.get(r.path ?? '') ?? 0) + r.body.items.length);
    expect(Object.fromEntries(byPath)).toEqual({
      '/audit/prod-aks-1': 3,
      '/audit/prod-gke-1': 4,
      '/audit/prod-eks-1': 3,
    });
  });
});

describe('cli > send > over HTTPS', () => {
  it('posts EventList batches of at most 400 with the client certificate and the bearer token', async () => {
    const summary = await sendItems(events(900), { url, ...tls(), token: TOKEN });
    expect(summary).toEqual({ batches: 3, sent: 900, accepted: 900, rejected: 0, retries: 0 });
    expect(received.map((r) => r.body.items.length)).toEqual([400, 400, 100]);
    expect(received[0]).toMatchObject({
      contentType: 'application/json',
      authorization: `Bearer ${TOKEN}`,
      clientCN: 'apiserver',
      body: { kind: 'EventList', apiVersion: 'audit.k8s.io/v1' },
    });
    expect(received.flatMap((r) => r.body.items.map((item) => item.auditID))).toEqual(
      events(900).map((e) => e.auditID),
    );
  });

  it('is refused without a client certificate, and does not retry a TLS failure', async () => {
    const failure = sendItems(events(1), { url, ca: tls().ca, retry: { initialDelayMs: 1 } });
    await expect(failure).rejects.toThrow(DeliveryFailedError);
    await expect(failure).rejects.toThrow('a retry cannot change this answer');
    expect(received).toHaveLength(0);
  });

  it('does not trust a server certificate from another CA', async () => {
    const failure = sendItems(events(1), { ...tls(), url, ca: readFileSync(file('other-ca.crt')) });
    await expect(failure).rejects.toThrow(/certificate/i);
    expect(received).toHaveLength(0);
  });

  it('retries a 503 after its Retry-After and a 500 with backoff, then delivers the batch once', async () => {
    const answers = [503, 500, 200];
    handler = (request, response) => {
      const status = answers.shift() ?? 200;
      response.writeHead(status, status === 503 ? { 'Retry-After': '0' } : {});
      response.end(
        status === 200 ? JSON.stringify({ accepted: request.body.items.length, rejected: 0 }) : 'busy',
      );
    };
    const delays: number[] = [];
    const summary = await sendItems(events(2), {
      url,
      ...tls(),
      retry: { initialDelayMs: 5, jitter: 0 },
      onRetry: ({ delayMs }) => delays.push(delayMs),
    });
    expect(delays).toEqual([0, 7.5].map(Math.round));
    expect(received).toHaveLength(3);
    expect(summary).toMatchObject({ batches: 1, accepted: 2, retries: 2 });
  });

  it('stops at a 401 with what the receiver said', async () => {
    handler = (_request, response) => {
      response.writeHead(401, { 'Content-Type': 'application/json' });
      response.end(
        JSON.stringify({ error: { code: 'KAUDIT_ERR_UNAUTHENTICATED', message: 'no valid bearer token' } }),
      );
    };
    await expect(sendItems(events(1), { url, ...tls(), token: 'wrong' })).rejects.toThrow(
      /answered 401: KAUDIT_ERR_UNAUTHENTICATED: no valid bearer token/,
    );
    expect(received).toHaveLength(1);
  });

  // The sink answers 200 with the counts to a batch without a valid event; sinks before it answered 400.
  it.each([200, 400])(
    'counts a %i with counts (a batch without a valid event) as rejected events',
    async (status) => {
      handler = (request, response) => {
        const allInvalid = request.body.items.length === 2;
        const size = request.body.items.length;
        response.writeHead(allInvalid ? status : 200, { 'Content-Type': 'application/json' });
        response.end(
          JSON.stringify({ accepted: allInvalid ? 0 : size, rejected: allInvalid ? size : 0, errors: [] }),
        );
      };
      const summary = await sendItems(events(3), { url, ...tls(), batchSize: 2 });
      expect(summary).toMatchObject({ batches: 2, sent: 3, accepted: 1, rejected: 2, retries: 0 });
    },
  );

  it('sends files as kaudit detect reads them, reporting lines it cannot read', async () => {
    const log = file('audit.jsonl');
    writeFileSync(log, `${JSON.stringify({ auditID: 'a' })}\n{broken\n${JSON.stringify({ auditID: 'b' })}\n`);
    const unreadable: number[] = [];
    const result = await sendFiles([log], {
      url,
      ...tls(),
      onUnreadable: ({ line }) => unreadable.push(line),
    });
    expect(result).toMatchObject({ sent: 2, accepted: 2, unreadable: 1 });
    expect(unreadable).toEqual([2]);
    expect(received[0]?.body.items.map((item) => item.auditID)).toEqual(['a', 'b']);
  });
});

describe('cli > send > command', () => {
  const run = async (args: string[]) => {
    const program = new Command('kaudit').exitOverride();
    registerSend(program);
    const out: string[] = [];
    const err: string[] = [];
    const stdout = jest
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk) => out.push(String(chunk)) > 0);
    const stderr = jest
      .spyOn(process.stderr, 'write')
      .mockImplementation((chunk) => err.push(String(chunk)) > 0);
    const before = process.exitCode;
    try {
      await program.parseAsync(['node', 'kaudit', 'send', ...args]);
      return { code: process.exitCode, stdout: out.join(''), stderr: err.join('') };
    } finally {
      process.exitCode = before;
      stdout.mockRestore();
      stderr.mockRestore();
    }
  };

  const flags = () => [
    '--to',
    url,
    '--cert',
    file('apiserver.crt'),
    '--key',
    file('apiserver.key'),
    '--cacert',
    file('ca.crt'),
    '--token-file',
    file('token'),
  ];

  it('prints the summary and exits 0 when everything was accepted', async () => {
    const log = file('ok.jsonl');
    writeFileSync(
      log,
      `${events(5)
        .map((e) => JSON.stringify(e))
        .join('\n')}\n`,
    );
    const result = await run([log, ...flags(), '--batch-size', '2', '--cluster', 'prod']);
    expect(result).toMatchObject({
      code: 0,
      stdout: 'sent 5 events in 3 batches, accepted 5, rejected 0, unreadable 0\n',
    });
    expect(received.map((r) => r.authorization)).toEqual(Array(3).fill(`Bearer ${TOKEN}`));
  });

  it('exits 2 when the receiver rejected some events', async () => {
    handler = (request, response) => {
      response.writeHead(200).end(JSON.stringify({ accepted: request.body.items.length - 1, rejected: 1 }));
    };
    const log = file('mixed.jsonl');
    writeFileSync(
      log,
      `${events(3)
        .map((e) => JSON.stringify(e))
        .join('\n')}\n`,
    );
    expect(await run([log, ...flags()])).toMatchObject({
      code: 2,
      stdout: expect.stringContaining('rejected 1'),
    });
  });

  it('exits 1 with a clear error when the batch is not delivered', async () => {
    handler = (_request, response) => response.writeHead(413).end('too large');
    const log = file('big.jsonl');
    writeFileSync(log, `${JSON.stringify({ auditID: 'x' })}\n`);
    const result = await run([log, ...flags(), '--retries', '1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/a batch of 1 events was not delivered .*answered 413: too large/);
  });

  it('refuses a URL with a query string (the API server drops them)', async () => {
    await expect(run(['x.jsonl', '--to', `${url}?token=abc`])).rejects.toThrow(
      'must not carry a query string',
    );
  });
});

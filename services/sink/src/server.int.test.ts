import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@kaudit/service-kit';
import { type DevCerts, ensureDevCerts, waitFor } from '@kaudit/testkit';
import { type SinkServer, startSinkServer } from './server';

/** The server alone (no Kafka): certificate rotation without a restart. */
describe('sink > server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-server-'));
  let first: DevCerts;
  let second: DevCerts;
  const live = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
  let server: SinkServer;

  const get = (ca: string) =>
    new Promise<number>((resolve, reject) => {
      request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/',
          servername: 'localhost',
          ca: readFileSync(ca),
          agent: false,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      )
        .on('error', reject)
        .end();
    });

  beforeAll(async () => {
    first = await ensureDevCerts(join(dir, 'first'));
    second = await ensureDevCerts(join(dir, 'second'));
    copyFileSync(first.serverCert, live.cert);
    copyFileSync(first.serverKey, live.key);
    server = await startSinkServer({
      app: (_req, res) => res.end('ok'),
      tls: { certFile: live.cert, keyFile: live.key, caFile: undefined },
      logger: createLogger({ service: 'sink-test', level: 'silent' }),
      port: 0,
      host: '127.0.0.1',
      requestTimeoutMs: 5000,
      tlsPollIntervalMs: 50,
    });
  });

  afterAll(async () => {
    await server?.close(100);
  });

  it('serves a rotated certificate without a restart, and keeps the old one while the pair is half-written', async () => {
    expect(await get(first.caCert)).toBe(200);
    // Half-written: new certificate, old key. The mismatched pair must not be taken.
    copyFileSync(second.serverCert, live.cert);
    expect(server.reloadTls()).toBe(false);
    expect(await get(first.caCert)).toBe(200);
    copyFileSync(second.serverKey, live.key);
    // The file watcher picks the change up on its own.
    await waitFor(
      'the rotated certificate',
      async () => (await get(second.caCert).catch(() => 0)) === 200 || undefined,
      10_000,
    );
    await expect(get(first.caCert)).rejects.toThrow();
  });
});

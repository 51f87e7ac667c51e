import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from '@kaudit/service-kit';
import { markAwaitingContinue } from './admission';

/**
 * HTTPS (or, only with SINK_INSECURE_DEV, HTTP) around the app. Certificate, key and client CA are
 * re-read when their files change (cert-manager and kubelet secret mounts swap them in place), so a
 * rotated certificate is served without a restart; a half-written pair keeps the previous context.
 * Client certificates are requested but checked per request (auth.ts), so /healthz works without one.
 * A connection must finish its TLS handshake within tlsHandshakeTimeoutMs (with plain HTTP: send its
 * request headers), so sockets that never speak do not pile up. `Expect: 100-continue` is answered by
 * the app once the request is admitted (admission.ts), not by Node on arrival.
 */
export interface SinkServerOptions {
  app: RequestListener;
  tls: { certFile: string; keyFile: string; caFile: string | undefined } | undefined;
  logger: Logger;
  port: number;
  host: string;
  /** Time allowed to receive a whole request (SINK_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
  /** Time a new connection has to finish its TLS handshake, or with plain HTTP to send its headers (default 5 s). */
  tlsHandshakeTimeoutMs?: number;
  /** How often the certificate files are checked for changes (default 5 s). */
  tlsPollIntervalMs?: number;
  /** Extra files to watch with their reload callbacks (the bearer token file). */
  watch?: Array<{ file: string; onChange: () => void }>;
}

export interface SinkServer {
  port: number;
  server: Server | HttpsServer;
  /** Re-reads the TLS files now (also runs on change). */
  reloadTls(): boolean;
  /** Stops accepting, lets in-flight requests finish (up to graceMs), then closes what is left. */
  close(graceMs?: number): Promise<void>;
}

export async function startSinkServer(options: SinkServerOptions): Promise<SinkServer> {
  const logger = options.logger.child({ component: 'server' });
  const { tls } = options;
  const readTls = (): SecureContextOptions | undefined =>
    tls && {
      cert: readFileSync(tls.certFile),
      key: readFileSync(tls.keyFile),
      ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
    };

  const handshakeTimeoutMs = options.tlsHandshakeTimeoutMs ?? 5000;
  // Node enforces headersTimeout and requestTimeout only when it checks, every 30 s by default.
  const connectionsCheckingInterval = Math.max(10, Math.min(1000, Math.floor(handshakeTimeoutMs / 4)));
  const server = tls
    ? createHttpsServer(
        {
          ...readTls(),
          requestCert: tls.caFile !== undefined,
          rejectUnauthorized: false,
          minVersion: 'TLSv1.2',
          handshakeTimeout: handshakeTimeoutMs,
          connectionsCheckingInterval,
        },
        options.app,
      )
    : createHttpServer({ connectionsCheckingInterval }, options.app);
  server.on('checkContinue', (req, res) => {
    markAwaitingContinue(req);
    options.app(req, res);
  });
  server.requestTimeout = options.requestTimeoutMs;
  server.headersTimeout = Math.min(options.requestTimeoutMs, tls ? 10_000 : handshakeTimeoutMs);
  // The API server reuses connections; keep them longer than Node's 5 s default.
  server.keepAliveTimeout = 30_000;

  const reloadTls = (): boolean => {
    if (!tls || !('setSecureContext' in server)) return false;
    try {
      const context = readTls()!;
      createSecureContext(context); // throws on a mismatched or half-written pair
      server.setSecureContext(context);
      logger.info({ certFile: tls.certFile }, 'TLS certificate reloaded');
      return true;
    } catch (err) {
      logger.warn(
        { err: { message: (err as Error).message }, certFile: tls.certFile },
        'TLS files not usable yet: keeping the current certificate',
      );
      return false;
    }
  };

  const timers = new Set<NodeJS.Timeout>();
  const watched: Array<{ file: string; listener: () => void }> = [];
  const watch = (file: string, onChange: () => void) => {
    // Debounced: cert and key change one after the other.
    let timer: NodeJS.Timeout | undefined;
    const listener = () => {
      if (timer) timers.delete(timer);
      clearTimeout(timer);
      timer = setTimeout(onChange, 200);
      timers.add(timer);
    };
    watchFile(file, { interval: options.tlsPollIntervalMs ?? 5000, persistent: false }, listener);
    watched.push({ file, listener });
  };
  if (tls) for (const file of [tls.certFile, tls.keyFile, tls.caFile]) if (file) watch(file, reloadTls);
  for (const { file, onChange } of options.watch ?? []) watch(file, onChange);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info(
    { port, host: options.host, tls: tls !== undefined, mtls: tls?.caFile !== undefined },
    'sink listening',
  );

  return {
    port,
    server,
    reloadTls,
    async close(graceMs = 15_000) {
      for (const { file, listener } of watched) unwatchFile(file, listener);
      for (const timer of timers) clearTimeout(timer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

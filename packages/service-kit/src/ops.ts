import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Router } from 'express';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Liveness } from './liveness';
import { poolMetrics } from './workers';

export interface OpsOptions {
  registry: Registry;
  /** Ready = able to take work now (connected, not shutting down, spool not full...). */
  isReady: () => boolean | Promise<boolean>;
  /** Alive = not dead for good (liveness.ts); without it /healthz always answers ok. */
  liveness?: Pick<Liveness, 'alive' | 'reason'>;
}

/**
 * GET /healthz (200 while alive, 503 once dead for good), /readyz (503 + Retry-After until ready, and
 * when dead), /metrics (Prometheus text).
 */
export function createOpsRouter(options: OpsOptions): Router {
  const router = express.Router();
  const alive = () => options.liveness?.alive() ?? true;
  // The registry's text; in a worker of a pool (workers.ts), every worker's series summed by the primary.
  const metricsText = poolMetrics(options.registry);
  router.get('/healthz', (_req, res) => {
    if (alive()) res.json({ status: 'ok' });
    else res.status(503).json({ status: 'dead', reason: options.liveness?.reason() });
  });
  router.get('/readyz', async (_req, res) => {
    const ready = alive() && (await Promise.resolve(options.isReady()).catch(() => false));
    if (ready) res.json({ status: 'ready' });
    else res.status(503).set('Retry-After', '5').json({ status: 'not ready' });
  });
  router.get('/metrics', async (_req, res) => {
    try {
      const text = await metricsText();
      res.set('Content-Type', options.registry.contentType).send(text);
    } catch (err) {
      res
        .status(503)
        .type('text/plain')
        .send(`metrics unavailable: ${(err as Error).message}\n`);
    }
  });
  return router;
}

/** A plain-HTTP server with just the ops routes, for services that have no HTTP app of their own. */
export async function startOpsServer(
  options: OpsOptions & { port: number; host?: string; logger: Logger },
): Promise<{ port: number; close: () => Promise<void> }> {
  const app = express();
  app.disable('x-powered-by');
  app.use(createOpsRouter(options));
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  options.logger.info({ component: 'ops', port }, 'health and metrics listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

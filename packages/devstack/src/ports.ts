import { createServer } from 'node:net';

/**
 * A port to listen on: `wanted` when it is free, any free one when `wanted` is 0. Checked by binding
 * it for a moment, so a taken port fails here with its number instead of deep inside a service's log.
 */
export function reservePort(wanted: number, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`port ${wanted} on ${host} is in use (another pnpm start or service running?)`)
          : error,
      );
    });
    server.listen(wanted, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : wanted;
      server.close(() => resolve(port));
    });
  });
}

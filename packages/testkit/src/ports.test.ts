import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freeLoopbackPorts } from './ports';

const listenOn = (port: number) =>
  new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });

describe('testkit > free loopback ports', () => {
  it('gives distinct ports below the ephemeral range, each free to bind', async () => {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports = await freeLoopbackPorts(5);
    expect(new Set(ports).size).toBe(5);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(10_000);
      expect(port).toBeLessThan(low);
      await listenOn(port);
    }
  });
});

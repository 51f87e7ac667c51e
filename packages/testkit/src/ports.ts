import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const listens = (port: number): Promise<number | undefined> =>
  new Promise((resolvePort) => {
    const server = createServer();
    server.once('error', () => resolvePort(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => resolvePort(bound));
    });
  });

/** The low end of the kernel's ephemeral port range (where outgoing connections get their ports). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * Loopback ports nothing listens on, for a process started later to bind (Kafka, etcd, kube-apiserver, a
 * service): chosen below the ephemeral range, because a port listen(0) hands out is from that range,
 * where any outgoing connection on the machine may take it before the process binds (seen in CI: etcd
 * "bind: address already in use"). Connections to them are refused until something listens.
 */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const low = ephemeralLow();
  const ports = new Set<number>();
  for (let attempt = 0; ports.size < count && attempt < 200; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (!ports.has(port) && (await listens(port)) === port) ports.add(port);
  }
  while (ports.size < count) ports.add((await listens(0))!);
  return [...ports];
}

/** One port of freeLoopbackPorts. */
export async function freeLoopbackPort(): Promise<number> {
  return (await freeLoopbackPorts(1))[0]!;
}

import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { KAFKA_SECURITY_VARIABLES } from '@kaudit/service-kit';

/** Addresses of Kafka and Elasticsearch (the test stack's defaults unless the environment says otherwise). */
export interface StackAddresses {
  kafkaBrokers: string[];
  esNode: string;
  /** The caller's KAFKA_SSL_* / KAFKA_SASL_* variables: the services get them, the devstack's clients obey them. */
  kafkaSecurityEnv?: Record<string, string>;
}

export function stackAddresses(env: NodeJS.ProcessEnv = process.env): StackAddresses {
  return {
    kafkaBrokers: (env.KAFKA_BROKERS ?? '127.0.0.1:9092')
      .split(',')
      .map((broker) => broker.trim())
      .filter(Boolean),
    esNode: env.ES_NODE ?? 'http://127.0.0.1:9200',
    kafkaSecurityEnv: Object.fromEntries(
      KAFKA_SECURITY_VARIABLES.flatMap((name) => (env[name] ? [[name, env[name]]] : [])),
    ),
  };
}

function tcpReachable(hostPort: string): Promise<boolean> {
  const at = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(at + 1));
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 });
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function esReachable(esNode: string): Promise<boolean> {
  try {
    return (await fetch(new URL('/_cluster/health', esNode), { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

export async function stackReachable(addresses: StackAddresses): Promise<boolean> {
  const [kafka, es] = await Promise.all([
    tcpReachable(addresses.kafkaBrokers[0] ?? '127.0.0.1:9092'),
    esReachable(addresses.esNode),
  ]);
  return kafka && es;
}

/** Runs test/stack/stack.sh up|down, its output going to `onOutput` (default: stderr). */
export function runStackScript(
  rootDir: string,
  command: 'up' | 'down',
  onOutput: (text: string) => void = (text) => process.stderr.write(text),
  /** Variables of stack.sh (KAUDIT_STACK_DIR, ports, KAUDIT_STACK_ONLY, ...) over the caller's. */
  env: Record<string, string> = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(rootDir, 'test/stack/stack.sh'), command], {
      cwd: rootDir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk: Buffer) => onOutput(chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => onOutput(chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`test/stack/stack.sh ${command} exited with ${code}`)),
    );
  });
}

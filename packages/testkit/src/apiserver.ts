import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freeLoopbackPorts } from './ports';

const run = promisify(execFile);

/** test/stack/apiserver.sh of this checkout (the same path from src/ and from dist/). */
export const apiServerScript = resolve(__dirname, '../../../test/stack/apiserver.sh');

/** The stack's identities (test/stack/apiserver-rbac.yaml); `admin` is in system:masters. */
export type ApiServerUser = 'admin' | 'alice' | 'bob' | 'carol';

export interface ApiServerOptions {
  /** Private directory for etcd's data, the PKI, tokens, kubeconfigs, the audit log and the logs. */
  dir: string;
  /** The sink's audit URL; without it the API server has no webhook backend (log file only). */
  sinkUrl?: string;
  /** CA of the sink's serving certificate, and the client certificate the API server presents. */
  caFile?: string;
  clientCertFile?: string;
  clientKeyFile?: string;
  /** A bearer token file for the sink instead of (or beside) the certificate. */
  tokenFile?: string;
  /** --audit-policy-file (default policies/audit-policy.yaml). */
  auditPolicyFile?: string;
  extraArgs?: string[];
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ApiServer {
  url: string;
  dir: string;
  kubectlPath: string;
  /** One kubeconfig per identity. */
  kubeconfigs: Record<ApiServerUser, string>;
  /** The log backend's file: every event the API server emitted, one JSON line each. */
  auditLog: string;
  /** kubectl as `user`; never throws on a non-zero exit (a denial is a result). */
  kubectl(user: ApiServerUser, args: string[], stdin?: string): Promise<KubectlResult>;
  /** The events of the audit log so far. */
  auditEvents(): Array<Record<string, unknown>>;
  /** The API server's Prometheus metrics text. */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/** The sum of a counter over all its label sets (0 when the API server never reported it). */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

/**
 * etcd and a real kube-apiserver on free loopback ports, through test/stack/apiserver.sh (which builds
 * them on first use: about 11 minutes, then cached), with its audit webhook pointed at `sinkUrl`.
 */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  await mkdir(options.dir, { recursive: true });
  const [apiPort, etcdPort, peerPort] = (await freeLoopbackPorts(3)) as [number, number, number];
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    KAUDIT_STACK_DIR: options.dir,
    KAUDIT_APISERVER_PORT: String(apiPort),
    KAUDIT_ETCD_PORT: String(etcdPort),
    KAUDIT_ETCD_PEER_PORT: String(peerPort),
    KAUDIT_APISERVER_WEBHOOK_URL: options.sinkUrl ?? '',
    KAUDIT_APISERVER_WEBHOOK_CA: options.caFile ?? '',
    KAUDIT_APISERVER_WEBHOOK_CLIENT_CERT: options.clientCertFile ?? '',
    KAUDIT_APISERVER_WEBHOOK_CLIENT_KEY: options.clientKeyFile ?? '',
    KAUDIT_APISERVER_WEBHOOK_TOKEN_FILE: options.tokenFile ?? '',
    KAUDIT_APISERVER_EXTRA_ARGS: (options.extraArgs ?? []).join(' '),
    // A build takes about 11 minutes, longer than any test waits: `apiserver.sh build` (CI) does it once.
    KAUDIT_APISERVER_NO_BUILD: 'true',
  };
  if (options.auditPolicyFile) env.KAUDIT_APISERVER_AUDIT_POLICY = options.auditPolicyFile;
  const script = async (command: string) => {
    try {
      return await run('bash', [apiServerScript, command], { env, maxBuffer: 16 << 20 });
    } catch (error) {
      const { stderr } = error as { stderr?: string };
      throw new Error(`apiserver.sh ${command} failed: ${stderr ?? String(error)}`);
    }
  };
  // A port can still be taken between its choice and its bind: then again, on other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      await script('up');
      break;
    } catch (error) {
      if (attempt === 3 || !/address already in use/.test(String(error))) throw error;
      await script('down');
      const [api, etcd, peer] = (await freeLoopbackPorts(3)) as [number, number, number];
      Object.assign(env, {
        KAUDIT_APISERVER_PORT: String(api),
        KAUDIT_ETCD_PORT: String(etcd),
        KAUDIT_ETCD_PEER_PORT: String(peer),
      });
    }
  }
  const vars = Object.fromEntries(
    (await script('env')).stdout.split('\n').flatMap((line) => {
      const match = /^export ([A-Z_]+)=(.*)$/.exec(line);
      return match ? [[match[1], match[2]]] : [];
    }),
  ) as Record<string, string>;
  const dir = vars.KAUDIT_APISERVER_DIR ?? join(options.dir, 'apiserver');
  const kubectlPath = vars.KAUDIT_KUBECTL ?? '';
  const kubeconfigs: Record<ApiServerUser, string> = {
    admin: join(dir, 'kubeconfig'),
    alice: join(dir, 'kubeconfig-alice'),
    bob: join(dir, 'kubeconfig-bob'),
    carol: join(dir, 'kubeconfig-carol'),
  };
  const auditLog = vars.KAUDIT_APISERVER_AUDIT_LOG ?? join(dir, 'audit.log');

  const kubectl = (user: ApiServerUser, args: string[], stdin?: string): Promise<KubectlResult> =>
    new Promise((resolveRun, reject) => {
      const child = spawn(kubectlPath, ['--kubeconfig', kubeconfigs[user], ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
      });
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      child.once('error', reject);
      child.once('close', (code) => resolveRun({ code: code ?? -1, stdout, stderr }));
      child.stdin.end(stdin ?? '');
    });

  return {
    url: vars.KAUDIT_APISERVER_URL ?? `https://127.0.0.1:${apiPort}`,
    dir,
    kubectlPath,
    kubeconfigs,
    auditLog,
    kubectl,
    auditEvents: () =>
      readFileSync(auditLog, 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    metrics: async () => {
      const result = await kubectl('admin', ['get', '--raw', '/metrics']);
      if (result.code !== 0) throw new Error(`GET /metrics failed: ${result.stderr}`);
      return result.stdout;
    },
    stop: async () => {
      await script('down');
    },
  };
}

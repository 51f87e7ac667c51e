import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Paths of the local PKI `pnpm start` and the end-to-end test use (all PEM). */
export interface DevCerts {
  dir: string;
  caCert: string;
  caKey: string;
  /** Server certificate for 127.0.0.1 and localhost, signed by the CA. */
  serverCert: string;
  serverKey: string;
  /** Client certificate (extendedKeyUsage clientAuth) the API server stand-in presents. */
  clientCert: string;
  clientKey: string;
  /** Subject CN of the client certificate. */
  clientCommonName: string;
  /** A bearer token (one line) for the sink's token file. */
  tokenFile: string;
}

export interface DevCertsOptions {
  clientCommonName?: string;
  /** Regenerate even when valid files exist. */
  force?: boolean;
}

const DEFAULT_CLIENT_CN = 'kube-apiserver';
/** Certificates are renewed when they expire within this many seconds. */
const RENEW_WITHIN_SECONDS = 7 * 24 * 3600;

export function devCertPaths(dir: string, clientCommonName = DEFAULT_CLIENT_CN): DevCerts {
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    clientCommonName,
    tokenFile: join(dir, 'token'),
  };
}

/**
 * A self-signed CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with the
 * openssl CLI on first use and reused while they are valid (so a browser or curl trusting the CA once
 * keeps working). Development only: keys are unencrypted, readable by the owner alone.
 */
export async function ensureDevCerts(dir: string, options: DevCertsOptions = {}): Promise<DevCerts> {
  const paths = devCertPaths(dir, options.clientCommonName ?? DEFAULT_CLIENT_CN);
  if (!options.force && (await stillValid(paths))) return paths;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await generate(paths);
  return paths;
}

async function stillValid(paths: DevCerts): Promise<boolean> {
  const files = [
    paths.caCert,
    paths.caKey,
    paths.serverCert,
    paths.serverKey,
    paths.clientCert,
    paths.clientKey,
  ];
  for (const file of [...files, paths.tokenFile]) {
    const info = await stat(file).catch(() => undefined);
    if (!info || info.size === 0) return false;
  }
  try {
    for (const cert of [paths.caCert, paths.serverCert, paths.clientCert]) {
      await openssl(['x509', '-in', cert, '-noout', '-checkend', String(RENEW_WITHIN_SECONDS)]);
    }
    const subject = await openssl([
      'x509',
      '-in',
      paths.clientCert,
      '-noout',
      '-subject',
      '-nameopt',
      'RFC2253',
    ]);
    return subject.includes(`CN=${paths.clientCommonName}`);
  } catch {
    return false;
  }
}

async function generate(paths: DevCerts): Promise<void> {
  const { dir } = paths;
  // P-256 keys: generated in milliseconds, accepted by Node, curl and kube-apiserver alike.
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl([
    'req',
    '-x509',
    ...newKey,
    '-keyout',
    paths.caKey,
    '-out',
    paths.caCert,
    '-days',
    '3650',
    '-subj',
    '/O=kaudit/CN=kaudit local development CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await issue(paths, {
    name: 'server',
    subject: '/O=kaudit/CN=localhost',
    extensions: [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    ],
    key: paths.serverKey,
    cert: paths.serverCert,
    newKey,
  });
  await issue(paths, {
    name: 'client',
    subject: `/O=kaudit/CN=${paths.clientCommonName}`,
    extensions: [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth',
    ],
    key: paths.clientKey,
    cert: paths.clientCert,
    newKey,
  });
  await writeFile(paths.tokenFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  for (const key of [paths.caKey, paths.serverKey, paths.clientKey]) await chmod(key, 0o600);
  await rm(join(dir, 'ca.srl'), { force: true });
}

async function issue(
  paths: DevCerts,
  spec: { name: string; subject: string; extensions: string[]; key: string; cert: string; newKey: string[] },
): Promise<void> {
  const csr = join(paths.dir, `${spec.name}.csr`);
  const ext = join(paths.dir, `${spec.name}.ext`);
  await openssl(['req', ...spec.newKey, '-keyout', spec.key, '-out', csr, '-subj', spec.subject]);
  await writeFile(ext, `${spec.extensions.join('\n')}\n`);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    paths.caCert,
    '-CAkey',
    paths.caKey,
    '-CAcreateserial',
    '-out',
    spec.cert,
    '-days',
    '825',
    '-sha256',
    '-extfile',
    ext,
  ]);
  await rm(csr, { force: true });
  await rm(ext, { force: true });
}

async function openssl(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('openssl', args, { encoding: 'utf8' });
    return stdout;
  } catch (error) {
    const { code, stderr } = error as { code?: string; stderr?: string };
    if (code === 'ENOENT') {
      throw new Error(
        'the openssl command is needed to make development certificates (apt-get install openssl)',
      );
    }
    throw new Error(`openssl ${args[0]} failed: ${(stderr ?? String(error)).trim()}`);
  }
}

/** The bearer token of a DevCerts set. */
export async function readDevToken(certs: DevCerts): Promise<string> {
  return (await readFile(certs.tokenFile, 'utf8')).trim();
}

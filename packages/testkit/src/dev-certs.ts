import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Paths of a local PKI for `pnpm start`, the end-to-end test and the sink's TLS tests (all PEM). */
export interface DevCerts {
  dir: string;
  caCert: string;
  caKey: string;
  /** Server certificate for 127.0.0.1, ::1 and localhost, signed by the CA. */
  serverCert: string;
  serverKey: string;
  /** Client certificate (extendedKeyUsage clientAuth) the API server stand-in presents. */
  clientCert: string;
  clientKey: string;
  /** Subject CN of the client certificate (and of the foreign one). */
  clientCommonName: string;
  /** A bearer token (one line) for the sink's token file. */
  tokenFile: string;
}

/**
 * A client certificate with the same CN, from ANOTHER CA that has the same subject as the real one: only
 * the signature tells them apart, so a server that checks names instead of the chain would accept it.
 */
export interface ForeignClientCerts {
  caCert: string;
  clientCert: string;
  clientKey: string;
}

export interface DevCertsOptions {
  /** Subject CN of the client certificate; 'kube-apiserver' unless given. */
  clientCommonName?: string;
  /** Also make a foreign client certificate (see ForeignClientCerts). */
  foreignClient?: boolean;
  /** Regenerate even when valid files exist. */
  force?: boolean;
}

export const DEV_CLIENT_COMMON_NAME = 'kube-apiserver';
const CA_SUBJECT = '/O=kaudit/CN=kaudit local development CA';
/** Certificates are renewed when they expire within this many seconds. */
const RENEW_WITHIN_SECONDS = 7 * 24 * 3600;

export function devCertPaths(dir: string, clientCommonName = DEV_CLIENT_COMMON_NAME): DevCerts {
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

function foreignPaths(dir: string): ForeignClientCerts {
  return {
    caCert: join(dir, 'other-ca.crt'),
    clientCert: join(dir, 'other-client.crt'),
    clientKey: join(dir, 'other-client.key'),
  };
}

/**
 * A self-signed CA, a server certificate for 127.0.0.1/localhost, a client certificate and a bearer
 * token (plus, on request, a foreign client certificate), made with the openssl CLI (node:crypto cannot
 * sign X.509) on first use and reused while they are valid, so a browser or curl trusting the CA once
 * keeps working. A new set is built in a scratch directory and moved in file by file, so an interrupted
 * run never leaves a half set. Development only: keys are unencrypted, readable by the owner alone.
 */
export async function ensureDevCerts(
  dir: string,
  options: DevCertsOptions & { foreignClient: true },
): Promise<DevCerts & { foreign: ForeignClientCerts }>;
export async function ensureDevCerts(dir: string, options?: DevCertsOptions): Promise<DevCerts>;
export async function ensureDevCerts(
  dir: string,
  options: DevCertsOptions = {},
): Promise<DevCerts & { foreign?: ForeignClientCerts }> {
  const paths = devCertPaths(dir, options.clientCommonName ?? DEV_CLIENT_COMMON_NAME);
  const foreign = options.foreignClient ? foreignPaths(dir) : undefined;
  const result = foreign ? { ...paths, foreign } : paths;
  if (!options.force && (await stillValid(paths, foreign))) return result;

  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const work = await mkdtemp(join(dir, '.work-'));
  try {
    const scratch = devCertPaths(work, paths.clientCommonName);
    const scratchForeign = foreign ? foreignPaths(work) : undefined;
    await generate(scratch, scratchForeign);
    const moves: Array<[string, string]> = [
      [scratch.caCert, paths.caCert],
      [scratch.caKey, paths.caKey],
      [scratch.serverCert, paths.serverCert],
      [scratch.serverKey, paths.serverKey],
      [scratch.clientCert, paths.clientCert],
      [scratch.clientKey, paths.clientKey],
      [scratch.tokenFile, paths.tokenFile],
    ];
    if (scratchForeign && foreign) {
      moves.push(
        [scratchForeign.caCert, foreign.caCert],
        [scratchForeign.clientCert, foreign.clientCert],
        [scratchForeign.clientKey, foreign.clientKey],
      );
    }
    for (const [from, to] of moves) await rename(from, to);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return result;
}

async function stillValid(paths: DevCerts, foreign: ForeignClientCerts | undefined): Promise<boolean> {
  const certs = [
    paths.caCert,
    paths.serverCert,
    paths.clientCert,
    ...(foreign ? [foreign.caCert, foreign.clientCert] : []),
  ];
  const files = [
    ...certs,
    paths.caKey,
    paths.serverKey,
    paths.clientKey,
    paths.tokenFile,
    ...(foreign ? [foreign.clientKey] : []),
  ];
  for (const file of files) {
    const info = await stat(file).catch(() => undefined);
    if (!info || info.size === 0) return false;
  }
  try {
    for (const cert of certs) {
      await openssl(['x509', '-in', cert, '-noout', '-checkend', String(RENEW_WITHIN_SECONDS)]);
    }
    for (const cert of [paths.clientCert, ...(foreign ? [foreign.clientCert] : [])]) {
      const subject = await openssl(['x509', '-in', cert, '-noout', '-subject', '-nameopt', 'RFC2253']);
      if (!subject.includes(`CN=${paths.clientCommonName}`)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

// P-256 keys: generated in milliseconds, accepted by Node, curl and kube-apiserver alike.
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const CLIENT_EXTENSIONS = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=clientAuth',
];

async function generate(paths: DevCerts, foreign: ForeignClientCerts | undefined): Promise<void> {
  const { dir } = paths;
  await makeCa(paths.caCert, paths.caKey);
  await issue(dir, {
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
    ca: { cert: paths.caCert, key: paths.caKey },
  });
  const clientSubject = `/O=kaudit/CN=${paths.clientCommonName}`;
  await issue(dir, {
    name: 'client',
    subject: clientSubject,
    extensions: CLIENT_EXTENSIONS,
    key: paths.clientKey,
    cert: paths.clientCert,
    ca: { cert: paths.caCert, key: paths.caKey },
  });
  if (foreign) {
    // Same CA subject, different key; its key is thrown away with the scratch directory.
    const otherCaKey = join(dir, 'other-ca.key');
    await makeCa(foreign.caCert, otherCaKey);
    await issue(dir, {
      name: 'other-client',
      subject: clientSubject,
      extensions: CLIENT_EXTENSIONS,
      key: foreign.clientKey,
      cert: foreign.clientCert,
      ca: { cert: foreign.caCert, key: otherCaKey },
    });
    await chmod(foreign.clientKey, 0o600);
  }
  await writeFile(paths.tokenFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  for (const key of [paths.caKey, paths.serverKey, paths.clientKey]) await chmod(key, 0o600);
}

async function makeCa(cert: string, key: string): Promise<void> {
  await openssl([
    'req',
    '-x509',
    ...NEW_KEY,
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '3650',
    '-subj',
    CA_SUBJECT,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

async function issue(
  dir: string,
  spec: {
    name: string;
    subject: string;
    extensions: string[];
    key: string;
    cert: string;
    ca: { cert: string; key: string };
  },
): Promise<void> {
  const csr = join(dir, `${spec.name}.csr`);
  const ext = join(dir, `${spec.name}.ext`);
  await openssl(['req', ...NEW_KEY, '-keyout', spec.key, '-out', csr, '-subj', spec.subject]);
  await writeFile(ext, `${spec.extensions.join('\n')}\n`);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    spec.ca.cert,
    '-CAkey',
    spec.ca.key,
    // A random serial rather than a ca.srl file beside the CA: nothing to clean up, no shared state.
    '-set_serial',
    `0x${randomBytes(16).toString('hex')}`,
    '-out',
    spec.cert,
    '-days',
    '825',
    '-sha256',
    '-extfile',
    ext,
  ]);
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

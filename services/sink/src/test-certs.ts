import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Throw-away certificates for tests and `pnpm start` (node:crypto cannot sign X.509, so the openssl
 * CLI does): a CA, a server certificate for localhost/127.0.0.1, a client certificate the CA signed,
 * and a client certificate with the same CN from ANOTHER CA (which the sink must refuse).
 * Idempotent: an existing complete set in `dir` is reused.
 */
export interface DevCerts {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** CN of both client certificates. */
  clientCn: string;
  otherCaCert: string;
  otherClientCert: string;
  otherClientKey: string;
}

export const DEV_CLIENT_CN = 'kube-apiserver-audit';

export function generateDevCerts(dir: string): DevCerts {
  const certs: DevCerts = {
    dir,
    caCert: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    clientCn: DEV_CLIENT_CN,
    otherCaCert: join(dir, 'other-ca.crt'),
    otherClientCert: join(dir, 'other-client.crt'),
    otherClientKey: join(dir, 'other-client.key'),
  };
  const files = [
    certs.caCert,
    certs.serverCert,
    certs.serverKey,
    certs.clientCert,
    certs.clientKey,
    certs.otherCaCert,
    certs.otherClientCert,
    certs.otherClientKey,
  ];
  if (files.every((file) => existsSync(file))) return certs;

  // Built in a scratch directory and moved in at the end, so a concurrent or interrupted run never
  // leaves a half set that the check above would take for complete.
  mkdirSync(dir, { recursive: true });
  const work = join(dir, `.work-${process.pid}-${Date.now()}`);
  mkdirSync(work);
  try {
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: work, stdio: 'pipe' });
    const key = (name: string) =>
      openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', name);
    const ca = (name: string, cn: string) => {
      key(`${name}.key`);
      openssl(
        'req',
        '-x509',
        '-new',
        '-key',
        `${name}.key`,
        '-out',
        `${name}.crt`,
        '-days',
        '3650',
        '-subj',
        `/CN=${cn}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      );
    };
    const leaf = (name: string, cn: string, caName: string, extensions: string) => {
      key(`${name}.key`);
      openssl('req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      writeFileSync(join(work, `${name}.ext`), extensions);
      openssl(
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${caName}.crt`,
        '-CAkey',
        `${caName}.key`,
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '825',
        '-sha256',
        '-extfile',
        `${name}.ext`,
      );
    };
    ca('ca', 'kaudit-dev-ca');
    ca('other-ca', 'kaudit-dev-ca'); // same name, different key: only the signature tells them apart
    leaf(
      'server',
      'localhost',
      'ca',
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n',
    );
    const client = 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n';
    leaf('client', DEV_CLIENT_CN, 'ca', client);
    leaf('other-client', DEV_CLIENT_CN, 'other-ca', client);
    for (const file of files) renameSync(join(work, file.slice(dir.length + 1)), file);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return certs;
}

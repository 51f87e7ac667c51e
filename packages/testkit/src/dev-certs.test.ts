import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevCerts } from './dev-certs';

// Runs the openssl CLI (no servers): the TLS handshake itself is proven by the send command's tests and
// the end-to-end test.
describe('testkit > dev-certs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-certs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const load = (file: string) => new X509Certificate(readFileSync(file));

  it('makes a CA, a server certificate for 127.0.0.1/localhost and a client certificate it signed', async () => {
    const certs = await ensureDevCerts(join(dir, 'a'), { clientCommonName: 'cluster-a' });
    const ca = load(certs.caCert);
    const server = load(certs.serverCert);
    const client = load(certs.clientCert);

    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(client.verify(ca.publicKey)).toBe(true);
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkHost('example.com')).toBeUndefined();
    expect(server.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
    expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth
    expect(client.subject).toContain('CN=cluster-a');
    expect(readFileSync(certs.tokenFile, 'utf8').trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(certs.clientKey).mode & 0o077).toBe(0);
    expect(statSync(certs.dir).mode & 0o077).toBe(0);
    expect(readdirSync(certs.dir).sort()).toEqual([
      'ca.crt',
      'ca.key',
      'client.crt',
      'client.key',
      'server.crt',
      'server.key',
      'token',
    ]);
  });

  it('adds a client certificate with the same names from another CA only when asked', async () => {
    const certs = await ensureDevCerts(join(dir, 'foreign'), { foreignClient: true });
    const ca = load(certs.caCert);
    const otherCa = load(certs.foreign.caCert);
    const client = load(certs.clientCert);
    const otherClient = load(certs.foreign.clientCert);

    expect(otherCa.subject).toBe(ca.subject);
    expect(otherClient.subject).toBe(client.subject);
    expect(otherClient.subject).toContain('CN=kube-apiserver');
    expect(otherClient.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(otherClient.verify(otherCa.publicKey)).toBe(true);
    expect(otherClient.verify(ca.publicKey)).toBe(false);
    expect(client.verify(otherCa.publicKey)).toBe(false);
    expect(statSync(certs.foreign.clientKey).mode & 0o077).toBe(0);

    // An existing plain set gains the foreign files (a new set) rather than returning paths that do not exist.
    const plain = load((await ensureDevCerts(join(dir, 'upgrade'))).caCert).fingerprint256;
    const upgraded = await ensureDevCerts(join(dir, 'upgrade'), { foreignClient: true });
    expect(load(upgraded.foreign.clientCert).verify(load(upgraded.foreign.caCert).publicKey)).toBe(true);
    expect(load(upgraded.caCert).fingerprint256).not.toBe(plain);
    const again = await ensureDevCerts(join(dir, 'upgrade'), { foreignClient: true });
    expect(load(again.foreign.caCert).fingerprint256).toBe(load(upgraded.foreign.caCert).fingerprint256);
  });

  it('reuses valid certificates, and makes new ones when forced or when the client name changes', async () => {
    const first = await ensureDevCerts(join(dir, 'b'));
    const fingerprint = load(first.caCert).fingerprint256;
    const token = readFileSync(first.tokenFile, 'utf8');

    const again = await ensureDevCerts(join(dir, 'b'));
    expect(load(again.caCert).fingerprint256).toBe(fingerprint);
    expect(readFileSync(again.tokenFile, 'utf8')).toBe(token);

    const renamed = await ensureDevCerts(join(dir, 'b'), { clientCommonName: 'other' });
    expect(load(renamed.caCert).fingerprint256).not.toBe(fingerprint);
    expect(load(renamed.clientCert).subject).toContain('CN=other');
    const renamedFingerprint = load(renamed.caCert).fingerprint256;

    const forced = await ensureDevCerts(join(dir, 'b'), { clientCommonName: 'other', force: true });
    expect(load(forced.caCert).fingerprint256).not.toBe(renamedFingerprint);
  });

  it('replaces a set with a missing file', async () => {
    const first = await ensureDevCerts(join(dir, 'c'));
    const fingerprint = load(first.caCert).fingerprint256;
    rmSync(first.serverKey);
    const repaired = await ensureDevCerts(join(dir, 'c'));
    expect(load(repaired.caCert).fingerprint256).not.toBe(fingerprint);
    expect(load(repaired.serverCert).verify(load(repaired.caCert).publicKey)).toBe(true);
  });
});

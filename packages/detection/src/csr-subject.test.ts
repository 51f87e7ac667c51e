import { MASTERS_CSR, NODE_CSR, PERSON_CSR } from '../test/csrs';
import { csrSubject } from './csr-subject';

describe('detection > csr-subject', () => {
  it('reads CN and every O of a PEM request as the API server logs it (base64)', () => {
    expect(csrSubject(MASTERS_CSR)).toEqual({ commonName: 'mallory', organizations: ['system:masters'] });
    expect(csrSubject(NODE_CSR)).toEqual({
      commonName: 'system:node:worker-1',
      organizations: ['system:nodes'],
    });
    expect(csrSubject(PERSON_CSR)).toEqual({
      commonName: 'alice@example.com',
      organizations: ['dev', 'ops'],
    });
  });

  it('is no subject, never an error, for anything that is not a request', () => {
    const pem = Buffer.from(MASTERS_CSR, 'base64').toString('latin1');
    const corrupt = pem.replace(
      /(REQUEST-----\n)(.{20})/,
      (_m, head, body) => `${head}${'A'.repeat(body.length)}`,
    );
    const truncated = pem.slice(0, pem.length / 2) + pem.slice(pem.indexOf('-----END'));
    for (const value of [
      undefined,
      42,
      '',
      'not base64 at all!',
      Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----').toString('base64'),
      Buffer.from(corrupt).toString('base64'),
      Buffer.from(truncated).toString('base64'),
      'A'.repeat(70_000),
    ])
      expect(csrSubject(value)).toBeUndefined();
  });
});

import type { IncomingMessage } from 'node:http';
import { createAuthenticator, matchToken, parseTokenFile } from './auth';

const A = 'aaaaaaaaaaaaaaaa-token';
const B = 'bbbbbbbbbbbbbbbb-token';

const request = (headers: Record<string, string>, socket: Record<string, unknown> = {}) =>
  ({ headers, socket }) as unknown as IncomingMessage;

const tlsSocket = (authorized: boolean, cn: string | undefined) => ({
  encrypted: true,
  authorized,
  authorizationError: authorized ? null : 'UNABLE_TO_GET_ISSUER_CERT',
  getPeerCertificate: () => (cn === undefined ? {} : { subject: { CN: cn } }),
});

describe('sink > auth > tokens', () => {
  it('parses tokens with optional clusters and keeps only digests', () => {
    const entries = parseTokenFile(`# tokens\n\n${A} prod\n  ${B}  \n`);
    expect(entries.map((e) => [e.line, e.cluster])).toEqual([
      [3, 'prod'],
      [4, undefined],
    ]);
    expect(JSON.stringify(entries)).not.toContain(A);
  });

  it.each([
    ['', /no tokens/],
    ['short', /line 1: token is shorter than 16/],
    [`${A} prod extra`, /line 1: expected/],
    [`${A} bad/cluster`, /line 1: expected/],
  ])('rejects the file %j', (text, message) => {
    expect(() => parseTokenFile(text)).toThrow(message);
  });

  it('matches only an exact token', () => {
    const entries = parseTokenFile(`${A} prod\n${B}\n`);
    expect(matchToken(entries, B)?.line).toBe(2);
    expect(matchToken(entries, `${A}x`)).toBeUndefined();
    expect(matchToken(entries, A.slice(0, -1))).toBeUndefined();
    expect(matchToken(entries, '')).toBeUndefined();
  });
});

describe('sink > auth > requests', () => {
  const tokens = parseTokenFile(`${A} prod\n`);
  const both = createAuthenticator({
    mtls: true,
    allowedSubjects: new Map([['apiserver', 'eu']]),
    tokens: () => tokens,
    allowAnonymous: false,
  });

  it.each([
    [
      'a valid token',
      request({ authorization: `Bearer ${A}` }),
      { ok: true, identity: { method: 'token', cluster: 'prod' } },
    ],
    [
      'a valid allowed certificate',
      request({}, tlsSocket(true, 'apiserver')),
      { ok: true, identity: { method: 'mtls', subject: 'CN=apiserver', cluster: 'eu' } },
    ],
    [
      'a certificate from another CA',
      request({}, tlsSocket(false, 'apiserver')),
      { ok: false, status: 401, reason: expect.stringMatching(/not accepted/) },
    ],
    [
      'a valid certificate with another CN',
      request({}, tlsSocket(true, 'intruder')),
      { ok: false, status: 403, code: 'KAUDIT_ERR_FORBIDDEN' },
    ],
    [
      'a wrong token beside a good certificate (either valid credential is enough)',
      request({ authorization: `Bearer ${B}` }, tlsSocket(true, 'apiserver')),
      {
        ok: true,
        identity: { method: 'mtls', subject: 'CN=apiserver', cluster: 'eu' },
        note: expect.stringMatching(/bearer token is not valid: authenticated by the client certificate/),
      },
    ],
    [
      'a good token beside a certificate from another CA',
      request({ authorization: `Bearer ${A}` }, tlsSocket(false, 'apiserver')),
      { ok: true, identity: { method: 'token', cluster: 'prod' } },
    ],
    [
      'a wrong token beside a certificate from another CA',
      request({ authorization: `Bearer ${B}` }, tlsSocket(false, 'apiserver')),
      {
        ok: false,
        status: 401,
        reason: expect.stringMatching(/^bearer token is not valid; client certificate not accepted/),
      },
    ],
    [
      'a wrong token beside a valid certificate with another CN',
      request({ authorization: `Bearer ${B}` }, tlsSocket(true, 'intruder')),
      { ok: false, status: 403, reason: expect.stringMatching(/^bearer token is not valid; .*CN=intruder/) },
    ],
    [
      'a wrong token alone',
      request({ authorization: `Bearer ${B}` }),
      { ok: false, status: 401, reason: 'bearer token is not valid' },
    ],
    [
      'nothing',
      request({}),
      { ok: false, status: 401, reason: expect.stringMatching(/certificate or a bearer token is required/) },
    ],
    ['TLS without a certificate', request({}, tlsSocket(true, undefined)), { ok: false, status: 401 }],
  ])('%s', (_name, req, expected) => {
    expect(both(req)).toMatchObject(expected);
  });

  it.each([
    ['certificate only', { mtls: true, tokens: undefined }, 'a client certificate is required', undefined],
    ['token only', { mtls: false, tokens: () => parseTokenFile(A) }, 'a bearer token is required', 'Bearer'],
    [
      'certificate or token',
      { mtls: true, tokens: () => parseTokenFile(A) },
      'a client certificate or a bearer token is required',
      'Bearer',
    ],
  ])(
    'names only the credentials this configuration accepts in a 401 (%s)',
    (_name, accepts, reason, challenge) => {
      const authenticate = createAuthenticator({
        ...accepts,
        allowedSubjects: new Map(),
        allowAnonymous: false,
      });
      const result = authenticate(request({}, tlsSocket(true, undefined)));
      expect(result).toEqual({
        ok: false,
        status: 401,
        code: 'KAUDIT_ERR_UNAUTHENTICATED',
        reason,
        challenge,
      });
    },
  );

  it('lets anonymous clients in only when told to (insecure dev without client auth)', () => {
    const open = createAuthenticator({
      mtls: false,
      allowedSubjects: new Map(),
      tokens: undefined,
      allowAnonymous: true,
    });
    expect(open(request({}))).toMatchObject({ ok: true, identity: { method: 'none' } });
  });
});

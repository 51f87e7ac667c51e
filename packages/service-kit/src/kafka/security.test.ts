import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DevCerts, ensureDevCerts, type ForeignClientCerts } from '@kaudit/testkit';
import pino from 'pino';
import {
  ConfigError,
  kafkaSecurityError,
  kafkaSecurityProblem,
  loadKafkaSecurity,
  PLAINTEXT_KAFKA,
  parseKafkaSecurity,
  REDACT_PATHS,
} from '../index';

const SECRET = 'correct-horse-battery-staple';

describe('service-kit > kafka-security', () => {
  let dir: string;
  let certs: DevCerts & { foreign: ForeignClientCerts };
  let passwordFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kaudit-kafka-security-'));
    certs = await ensureDevCerts(join(dir, 'pki'), { foreignClient: true });
    passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, `${SECRET}\n`);
    writeFileSync(join(dir, 'empty'), '\n');
    writeFileSync(join(dir, 'not-pem'), 'hello\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const parse = (env: Record<string, string>) => parseKafkaSecurity(env);

  it('is plaintext when nothing is set (blank counts as unset)', () => {
    const { value, problems } = parse({ KAFKA_SSL: '', KAFKA_SASL_MECHANISM: ' ' });
    expect(problems).toEqual([]);
    expect(value?.ssl).toBeUndefined();
    expect(value?.sasl).toBeUndefined();
    expect(value?.describe()).toEqual({ protocol: 'PLAINTEXT' });
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['0', false],
  ])('reads KAFKA_SSL=%s', (text, on) => {
    const { value, problems } = parse({ KAFKA_SSL: text });
    expect(problems).toEqual([]);
    expect(value?.describe().protocol).toBe(on ? 'SSL' : 'PLAINTEXT');
    // Verification is on whatever else is set: there is no variable to turn it off.
    if (on) expect(value?.ssl).toEqual({ rejectUnauthorized: true });
  });

  it('TLS with a CA file and a client certificate (mTLS)', () => {
    const { value, problems } = parse({
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: certs.caCert,
      KAFKA_SSL_CERT_FILE: certs.clientCert,
      KAFKA_SSL_KEY_FILE: certs.clientKey,
    });
    expect(problems).toEqual([]);
    expect(value?.ssl?.rejectUnauthorized).toBe(true);
    expect(value?.ssl?.ca).toEqual([readFileSync(certs.caCert, 'utf8').trim()]);
    expect(String(value?.ssl?.cert)).toContain('BEGIN CERTIFICATE');
    expect(String(value?.ssl?.key)).toContain('PRIVATE KEY');
    expect(value?.describe()).toEqual({
      protocol: 'SSL',
      caFile: certs.caCert,
      clientCertFile: certs.clientCert,
    });
  });

  it('a CA bundle keeps every certificate', () => {
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(
      bundle,
      `${readFileSync(certs.caCert, 'utf8')}\n${readFileSync(certs.foreign.caCert, 'utf8')}`,
    );
    const { value } = parse({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: bundle });
    expect(value?.ssl?.ca).toHaveLength(2);
  });

  it.each(['scram-sha-512', 'SCRAM-SHA-256', 'plain'])('SASL %s over TLS', (mechanism) => {
    const { value, problems } = parse({
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: mechanism,
      KAFKA_SASL_USERNAME: 'kaudit',
      KAFKA_SASL_PASSWORD: SECRET,
    });
    expect(problems).toEqual([]);
    expect(value?.sasl).toEqual({ mechanism: mechanism.toLowerCase(), username: 'kaudit', password: SECRET });
    expect(value?.describe()).toEqual({
      protocol: 'SASL_SSL',
      saslMechanism: mechanism.toLowerCase(),
      saslUsername: 'kaudit',
    });
  });

  it('reads the password from KAFKA_SASL_PASSWORD_FILE without its final newline', () => {
    const { value, problems } = parse({
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'kaudit',
      KAFKA_SASL_PASSWORD_FILE: passwordFile,
    });
    expect(problems).toEqual([]);
    expect(value?.sasl).toMatchObject({ password: SECRET });
    // SCRAM never sends the password itself: allowed without TLS (SASL_PLAINTEXT).
    expect(value?.describe().protocol).toBe('SASL_PLAINTEXT');
  });

  it('Azure Event Hubs: user $ConnectionString, the connection string as password', () => {
    const connectionString =
      'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s=';
    const { value, problems } = parse({
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: '$ConnectionString',
      KAFKA_SASL_PASSWORD: connectionString,
    });
    expect(problems).toEqual([]);
    expect(value?.sasl).toEqual({
      mechanism: 'plain',
      username: '$ConnectionString',
      password: connectionString,
    });
  });

  // Each row: the environment, and the problems it must produce (all of them, at once).
  const cases: Array<[string, () => Record<string, string>, () => string[]]> = [
    [
      'KAFKA_SSL not a boolean',
      () => ({ KAFKA_SSL: 'maybe' }),
      () => ['KAFKA_SSL: must be true or false (got "maybe")'],
    ],
    [
      'TLS files without KAFKA_SSL=true',
      () => ({ KAFKA_SSL_CA_FILE: certs.caCert, KAFKA_SSL_CERT_FILE: certs.clientCert }),
      () => [
        'KAFKA_SSL_CA_FILE: only used with KAFKA_SSL=true; set KAFKA_SSL=true or unset KAFKA_SSL_CA_FILE',
        'KAFKA_SSL_CERT_FILE: only used with KAFKA_SSL=true; set KAFKA_SSL=true or unset KAFKA_SSL_CERT_FILE',
        'KAFKA_SSL_CERT_FILE/KAFKA_SSL_KEY_FILE: set both (client certificate for mTLS) or neither',
      ],
    ],
    [
      'missing and unparsable files',
      () => ({
        KAFKA_SSL: 'true',
        KAFKA_SSL_CA_FILE: join(dir, 'nope.pem'),
        KAFKA_SSL_CERT_FILE: join(dir, 'not-pem'),
        KAFKA_SSL_KEY_FILE: dir,
      }),
      () => [
        `KAFKA_SSL_CA_FILE: file ${join(dir, 'nope.pem')} does not exist`,
        `KAFKA_SSL_CERT_FILE: ${join(dir, 'not-pem')} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
        `KAFKA_SSL_KEY_FILE: file ${dir} is a directory`,
      ],
    ],
    [
      'a key that is not a key',
      () => ({
        KAFKA_SSL: 'true',
        KAFKA_SSL_CERT_FILE: certs.clientCert,
        KAFKA_SSL_KEY_FILE: certs.clientCert,
      }),
      () => [
        `KAFKA_SSL_KEY_FILE: ${certs.clientCert} holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY)`,
      ],
    ],
    [
      'a key of another certificate',
      () => ({
        KAFKA_SSL: 'true',
        KAFKA_SSL_CERT_FILE: certs.clientCert,
        KAFKA_SSL_KEY_FILE: certs.foreign.clientKey,
      }),
      () => ['KAFKA_SSL_KEY_FILE: the key does not belong to the certificate in KAFKA_SSL_CERT_FILE'],
    ],
    [
      'an unknown mechanism, and SASL variables without a mechanism',
      () => ({ KAFKA_SASL_MECHANISM: 'gssapi' }),
      () => ['KAFKA_SASL_MECHANISM: must be one of plain, scram-sha-256, scram-sha-512 (got "gssapi")'],
    ],
    [
      'credentials without a mechanism',
      () => ({
        KAFKA_SASL_USERNAME: 'kaudit',
        KAFKA_SASL_PASSWORD: SECRET,
        KAFKA_SASL_PASSWORD_FILE: passwordFile,
      }),
      () => [
        'KAFKA_SASL_USERNAME: only used with KAFKA_SASL_MECHANISM (plain, scram-sha-256, scram-sha-512)',
        'KAFKA_SASL_PASSWORD: only used with KAFKA_SASL_MECHANISM (plain, scram-sha-256, scram-sha-512)',
        'KAFKA_SASL_PASSWORD_FILE: only used with KAFKA_SASL_MECHANISM (plain, scram-sha-256, scram-sha-512)',
      ],
    ],
    [
      'a mechanism without credentials',
      () => ({ KAFKA_SASL_MECHANISM: 'scram-sha-512' }),
      () => [
        'KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM=scram-sha-512',
        'KAFKA_SASL_PASSWORD: KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required with KAFKA_SASL_MECHANISM=scram-sha-512',
      ],
    ],
    [
      'both password variables',
      () => ({
        KAFKA_SASL_MECHANISM: 'scram-sha-256',
        KAFKA_SASL_USERNAME: 'kaudit',
        KAFKA_SASL_PASSWORD: SECRET,
        KAFKA_SASL_PASSWORD_FILE: passwordFile,
      }),
      () => ['KAFKA_SASL_PASSWORD: set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both'],
    ],
    [
      'an empty or missing password file',
      () => ({
        KAFKA_SASL_MECHANISM: 'scram-sha-256',
        KAFKA_SASL_USERNAME: 'u',
        KAFKA_SASL_PASSWORD_FILE: join(dir, 'empty'),
      }),
      () => [`KAFKA_SASL_PASSWORD_FILE: ${join(dir, 'empty')} is empty`],
    ],
    [
      'PLAIN without TLS',
      () => ({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: SECRET }),
      () => ['KAFKA_SASL_MECHANISM: plain sends the password in clear text; set KAFKA_SSL=true (SASL_SSL)'],
    ],
  ];

  it.each(cases)('%s: every problem named at once', (_name, env, expected) => {
    const { value, problems } = parse(env());
    expect(value).toBeUndefined();
    expect(problems).toEqual(expected());
    for (const problem of problems) expect(problem).not.toContain(SECRET);
  });

  it('an expired client certificate is named', () => {
    const { problems } = parseKafkaSecurity(
      { KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: certs.clientCert, KAFKA_SSL_KEY_FILE: certs.clientKey },
      { now: new Date('2999-01-01T00:00:00Z') },
    );
    expect(problems).toEqual([expect.stringMatching(/^KAFKA_SSL_CERT_FILE: the certificate expired on /)]);
  });

  it('loadKafkaSecurity adds its problems to the service list and falls back to plaintext', () => {
    const problems = ['ES_NODE: must be a URL'];
    expect(loadKafkaSecurity({ KAFKA_SASL_MECHANISM: 'nope' }, problems)).toBe(PLAINTEXT_KAFKA);
    expect(problems).toHaveLength(2);
  });

  it('never shows the password or the key: JSON, spread, pino with the service redaction', () => {
    const { value } = parse({
      KAFKA_SSL: 'true',
      KAFKA_SSL_CERT_FILE: certs.clientCert,
      KAFKA_SSL_KEY_FILE: certs.clientKey,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'kaudit',
      KAFKA_SASL_PASSWORD: SECRET,
    });
    const lines: string[] = [];
    const logger = pino(
      { redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
      { write: (line: string) => lines.push(line) },
    );
    logger.info(
      { config: { kafka: { security: value } }, security: value, spread: { ...value } },
      'starting',
    );
    // And the raw kafkajs options, were anyone to log them.
    logger.info({ sasl: value?.sasl, ssl: value?.ssl }, 'raw');
    logger.info({ client: { sasl: value?.sasl, ssl: value?.ssl } }, 'raw, one level down');
    expect(lines).toHaveLength(3);
    const text = `${lines.join('')}${JSON.stringify(value)}${JSON.stringify({ ...value })}`;
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('PRIVATE KEY');
    expect(text).toContain('SASL_SSL');
  });
});

describe('service-kit > kafka-access', () => {
  const tls = (code: string, message = 'Connection error: x') =>
    Object.assign(new Error('retries exceeded'), {
      name: 'KafkaJSNumberOfRetriesExceeded',
      cause: Object.assign(new Error(message), { name: 'KafkaJSConnectionError', code }),
    });

  it.each<[string, unknown, RegExp | undefined]>([
    [
      'a refused SCRAM password',
      Object.assign(new Error('SASL SCRAM SHA512 authentication failed: invalid credentials'), {
        name: 'KafkaJSSASLAuthenticationError',
      }),
      /^KAFKA_SASL_PASSWORD: the broker refused the SASL credentials of KAFKA_SASL_USERNAME/,
    ],
    [
      'a mechanism the broker does not offer',
      Object.assign(new Error('SASL PLAIN mechanism is not supported by the server'), {
        name: 'KafkaJSSASLAuthenticationError',
      }),
      /^KAFKA_SASL_MECHANISM: the broker does not offer this mechanism/,
    ],
    [
      'an unknown CA',
      tls('UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
      /^KAFKA_SSL_CA_FILE: the broker's certificate is not signed by Node's public CAs/,
    ],
    ['a self-signed broker', tls('SELF_SIGNED_CERT_IN_CHAIN'), /^KAFKA_SSL_CA_FILE: /],
    [
      'a name mismatch',
      tls('ERR_TLS_CERT_ALTNAME_INVALID'),
      /^KAFKA_BROKERS: the broker's certificate is not issued/,
    ],
    ['an expired broker certificate', tls('CERT_HAS_EXPIRED'), /^KAFKA_BROKERS: .*not valid now/],
    [
      'no client certificate on an mTLS listener',
      tls(
        'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
        'Connection error: ...tlsv13 alert certificate required...',
      ),
      /^KAFKA_SSL_CERT_FILE: the broker requires a client certificate/,
    ],
    [
      'a client certificate the broker does not trust',
      tls('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'Connection error: sslv3 alert bad certificate'),
      /^KAFKA_SSL_CERT_FILE: the broker rejected the client certificate/,
    ],
    [
      'TLS to a plaintext listener',
      tls('ERR_SSL_WRONG_VERSION_NUMBER'),
      /^KAFKA_SSL: the broker's listener does not speak TLS/,
    ],
    ['a broker still starting', tls('ECONNREFUSED', 'Connection error: connect ECONNREFUSED'), undefined],
    ['anything else', new Error('boom'), undefined],
  ])('%s', (_name, error, expected) => {
    const problem = kafkaSecurityProblem(error);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });

  it('names the CA file it used', () => {
    const { value } = parseKafkaSecurity({ KAFKA_SSL: 'true' });
    expect(kafkaSecurityProblem(tls('SELF_SIGNED_CERT_IN_CHAIN'), value)).toContain("Node's public CAs");
  });

  it('kafkaSecurityError: a ConfigError for refusals, the ConfigError itself, undefined otherwise', () => {
    const config = new ConfigError(['X: bad']);
    expect(kafkaSecurityError(config)).toBe(config);
    expect(kafkaSecurityError(tls('UNABLE_TO_GET_ISSUER_CERT_LOCALLY'))?.problems).toEqual([
      expect.stringMatching(/^KAFKA_SSL_CA_FILE:/),
    ]);
    expect(kafkaSecurityError(new Error('boom'))).toBeUndefined();
  });
});

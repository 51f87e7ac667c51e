import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';

/**
 * How every kaudit process reaches a secured Kafka: TLS (KAFKA_SSL, KAFKA_SSL_CA_FILE, client certificate
 * KAFKA_SSL_CERT_FILE/KAFKA_SSL_KEY_FILE for mTLS) and SASL (KAFKA_SASL_MECHANISM plain | scram-sha-256 |
 * scram-sha-512, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE). Built in one place
 * so the four services, `pnpm start` and the benchmarks cannot drift apart.
 *
 * - Every problem is returned at once, named by the variable, like parseConfig; files are read here, at
 *   start-up, so a missing or malformed PEM is a configuration error and not a handshake failure later.
 * - The broker's certificate is always verified, hostname included (no variable turns that off): with
 *   no KAFKA_SSL_CA_FILE, Node's bundled public CAs (MSK, Confluent Cloud, Event Hubs use public CAs).
 * - Secrets never reach a log line: the object's JSON form (what pino writes) is describe(), and its
 *   problems name files and variables, never their contents.
 */

/** Every variable parseKafkaSecurity reads (README tables, and the env a parent passes to its children). */
export const KAFKA_SECURITY_VARIABLES = [
  'KAFKA_SSL',
  'KAFKA_SSL_CA_FILE',
  'KAFKA_SSL_CERT_FILE',
  'KAFKA_SSL_KEY_FILE',
  'KAFKA_SASL_MECHANISM',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
  'KAFKA_SASL_PASSWORD_FILE',
] as const;

export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

/** What may be logged of the security settings. */
export interface KafkaSecurityDescription {
  /** The Kafka security.protocol this amounts to. */
  protocol: 'PLAINTEXT' | 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL';
  caFile?: string;
  clientCertFile?: string;
  saslMechanism?: KafkaSaslMechanism;
  saslUsername?: string;
}

export interface KafkaSecurity {
  /** kafkajs `ssl`: undefined for plaintext. */
  ssl: ConnectionOptions | undefined;
  /** kafkajs `sasl`: undefined without SASL. */
  sasl: SASLOptions | undefined;
  describe(): KafkaSecurityDescription;
  /** pino and JSON.stringify write this instead of the keys and the password. */
  toJSON(): KafkaSecurityDescription;
}

export const PLAINTEXT_KAFKA: KafkaSecurity = securityOf(undefined, undefined, { protocol: 'PLAINTEXT' });

function securityOf(
  ssl: ConnectionOptions | undefined,
  sasl: SASLOptions | undefined,
  description: KafkaSecurityDescription,
): KafkaSecurity {
  const describe = () => ({ ...description });
  const security = { describe, toJSON: describe } as KafkaSecurity;
  // Not enumerable: a spread, Object.keys or a logger walking the object sees no secret.
  Object.defineProperty(security, 'ssl', { value: ssl, enumerable: false });
  Object.defineProperty(security, 'sasl', { value: sasl, enumerable: false });
  return Object.freeze(security);
}

type Env = Record<string, string | undefined>;

const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no']);

function readText(name: string, path: string, problems: string[]): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'is not readable by this process'
          : code === 'EISDIR'
            ? 'is a directory'
            : `cannot be read (${code ?? 'error'})`;
    problems.push(`${name}: file ${path} ${why}`);
    return undefined;
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function readCertificates(name: string, path: string, problems: string[]): string[] | undefined {
  const text = readText(name, path, problems);
  if (text === undefined) return undefined;
  const pems = text.match(PEM_CERT) ?? [];
  if (pems.length === 0) {
    problems.push(`${name}: ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    return undefined;
  }
  for (const pem of pems) {
    try {
      new X509Certificate(pem);
    } catch {
      problems.push(`${name}: ${path} holds a certificate that cannot be parsed`);
      return undefined;
    }
  }
  return pems;
}

function readKey(
  name: string,
  path: string,
  problems: string[],
): { pem: string; key: KeyObject } | undefined {
  const text = readText(name, path, problems);
  if (text === undefined) return undefined;
  try {
    return { pem: text, key: createPrivateKey(text) };
  } catch {
    problems.push(
      `${name}: ${path} holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY)`,
    );
    return undefined;
  }
}

/** The client certificate checks a broker would otherwise report as a bare handshake failure. */
function clientCertProblems(certPem: string, key: KeyObject, now: Date): string[] {
  const cert = new X509Certificate(certPem);
  const problems: string[] = [];
  if (!cert.checkPrivateKey(key)) {
    problems.push('KAFKA_SSL_KEY_FILE: the key does not belong to the certificate in KAFKA_SSL_CERT_FILE');
  }
  if (new Date(cert.validTo).getTime() < now.getTime()) {
    problems.push(`KAFKA_SSL_CERT_FILE: the certificate expired on ${new Date(cert.validTo).toISOString()}`);
  }
  return problems;
}

/** Reads the KAFKA_SSL_* and KAFKA_SASL_* variables; never throws, problems name the variables. */
export function parseKafkaSecurity(
  env: Env = process.env,
  options: { now?: Date } = {},
): { value: KafkaSecurity | undefined; problems: string[] } {
  const value = (name: string) => (env[name]?.trim() ? env[name]!.trim() : undefined);
  const problems: string[] = [];

  const sslText = value('KAFKA_SSL')?.toLowerCase();
  let sslOn = false;
  if (sslText !== undefined) {
    if (TRUE.has(sslText)) sslOn = true;
    else if (!FALSE.has(sslText))
      problems.push(`KAFKA_SSL: must be true or false (got ${JSON.stringify(sslText)})`);
  }
  const caFile = value('KAFKA_SSL_CA_FILE');
  const certFile = value('KAFKA_SSL_CERT_FILE');
  const keyFile = value('KAFKA_SSL_KEY_FILE');
  if (!sslOn) {
    // A CA or client certificate without KAFKA_SSL=true would silently connect in plaintext.
    for (const [name, set] of [
      ['KAFKA_SSL_CA_FILE', caFile],
      ['KAFKA_SSL_CERT_FILE', certFile],
      ['KAFKA_SSL_KEY_FILE', keyFile],
    ] as const) {
      if (set) problems.push(`${name}: only used with KAFKA_SSL=true; set KAFKA_SSL=true or unset ${name}`);
    }
  }
  if (Boolean(certFile) !== Boolean(keyFile)) {
    problems.push(
      'KAFKA_SSL_CERT_FILE/KAFKA_SSL_KEY_FILE: set both (client certificate for mTLS) or neither',
    );
  }

  let ssl: ConnectionOptions | undefined;
  if (sslOn) {
    ssl = { rejectUnauthorized: true };
    if (caFile) {
      const ca = readCertificates('KAFKA_SSL_CA_FILE', caFile, problems);
      if (ca) ssl.ca = ca;
    }
    if (certFile && keyFile) {
      const cert = readCertificates('KAFKA_SSL_CERT_FILE', certFile, problems);
      const key = readKey('KAFKA_SSL_KEY_FILE', keyFile, problems);
      if (cert && key) {
        problems.push(...clientCertProblems(cert[0]!, key.key, options.now ?? new Date()));
        ssl.cert = cert.join('\n');
        ssl.key = key.pem;
      }
    }
  }

  const mechanismText = value('KAFKA_SASL_MECHANISM')?.toLowerCase();
  const username = value('KAFKA_SASL_USERNAME');
  const password = env.KAFKA_SASL_PASSWORD?.length ? env.KAFKA_SASL_PASSWORD : undefined;
  const passwordFile = value('KAFKA_SASL_PASSWORD_FILE');
  let sasl: SASLOptions | undefined;
  let mechanism: KafkaSaslMechanism | undefined;
  if (mechanismText === undefined) {
    for (const [name, set] of [
      ['KAFKA_SASL_USERNAME', username],
      ['KAFKA_SASL_PASSWORD', password],
      ['KAFKA_SASL_PASSWORD_FILE', passwordFile],
    ] as const) {
      if (set)
        problems.push(`${name}: only used with KAFKA_SASL_MECHANISM (${KAFKA_SASL_MECHANISMS.join(', ')})`);
    }
  } else if (!(KAFKA_SASL_MECHANISMS as readonly string[]).includes(mechanismText)) {
    problems.push(
      `KAFKA_SASL_MECHANISM: must be one of ${KAFKA_SASL_MECHANISMS.join(', ')} (got ${JSON.stringify(mechanismText)})`,
    );
  } else {
    mechanism = mechanismText as KafkaSaslMechanism;
    if (!username) problems.push(`KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM=${mechanism}`);
    let secret: string | undefined;
    if (password !== undefined && passwordFile) {
      problems.push('KAFKA_SASL_PASSWORD: set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both');
    } else if (passwordFile) {
      const text = readText('KAFKA_SASL_PASSWORD_FILE', passwordFile, problems);
      // A file written by `echo` or an editor ends in a newline that is not part of the password.
      secret = text?.replace(/\r?\n$/, '');
      if (text !== undefined && !secret) problems.push(`KAFKA_SASL_PASSWORD_FILE: ${passwordFile} is empty`);
    } else if (password !== undefined) {
      secret = password;
    } else {
      problems.push(
        `KAFKA_SASL_PASSWORD: KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required with KAFKA_SASL_MECHANISM=${mechanism}`,
      );
    }
    if (mechanism === 'plain' && !sslOn) {
      problems.push(
        'KAFKA_SASL_MECHANISM: plain sends the password in clear text; set KAFKA_SSL=true (SASL_SSL)',
      );
    }
    if (username && secret) sasl = { mechanism, username, password: secret } as SASLOptions;
  }

  if (problems.length > 0) return { value: undefined, problems };
  const protocol = sasl ? (ssl ? 'SASL_SSL' : 'SASL_PLAINTEXT') : ssl ? 'SSL' : 'PLAINTEXT';
  return {
    value: securityOf(ssl, sasl, {
      protocol,
      ...(caFile ? { caFile } : {}),
      ...(certFile ? { clientCertFile: certFile } : {}),
      ...(mechanism ? { saslMechanism: mechanism } : {}),
      ...(username ? { saslUsername: username } : {}),
    }),
    problems: [],
  };
}

/** parseKafkaSecurity inside a service's loadConfig: adds its problems to the service's list. */
export function loadKafkaSecurity(env: Env, problems: string[]): KafkaSecurity {
  const parsed = parseKafkaSecurity(env);
  problems.push(...parsed.problems);
  return parsed.value ?? PLAINTEXT_KAFKA;
}

/**
 * parseKafkaSecurity for a second Kafka a process reads from (the sink's Event Hubs bridge): the same
 * variables under `prefix` (`SINK_EVENTHUB_` reads SINK_EVENTHUB_KAFKA_SSL, …_KAFKA_SASL_PASSWORD_FILE),
 * problems named by the prefixed variable. One parser, so both sides follow the same rules.
 */
export function parsePrefixedKafkaSecurity(
  env: Env,
  prefix: string,
): { value: KafkaSecurity | undefined; problems: string[] } {
  const mapped: Env = {};
  for (const name of KAFKA_SECURITY_VARIABLES) mapped[name] = env[`${prefix}${name}`];
  const parsed = parseKafkaSecurity(mapped);
  return {
    value: parsed.value,
    problems: parsed.problems.map((problem) => problem.replace(/\bKAFKA_(SSL|SASL)/g, `${prefix}KAFKA_$1`)),
  };
}

/** The prefixed variables parsePrefixedKafkaSecurity reads. */
export function prefixedKafkaSecurityVariables(prefix: string): string[] {
  return KAFKA_SECURITY_VARIABLES.map((name) => `${prefix}${name}`);
}

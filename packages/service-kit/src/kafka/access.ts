import type { Kafka } from 'kafkajs';
import { ConfigError } from '../config';
import type { KafkaSecurity } from './security';

/**
 * Turns the ways a secured connection is refused into one sentence naming the variable to fix. kafkajs
 * reports a wrong CA as a retriable "Connection error" and would keep retrying it like a broker that is
 * still starting; a wrong password or CA never heals, so start-up stops at once with a ConfigError.
 */

// Node's codes for "the chain does not lead to a CA we trust".
const UNTRUSTED_CHAIN = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

function causes(error: unknown): Array<{ name?: string; message?: string; code?: string }> {
  const chain: Array<{ name?: string; message?: string; code?: string }> = [];
  const seen = new Set<unknown>();
  let current = error;
  while (current && typeof current === 'object' && !seen.has(current) && chain.length < 8) {
    seen.add(current);
    chain.push(current as { name?: string; message?: string; code?: string });
    const next = current as { cause?: unknown; originalError?: unknown };
    current = next.cause ?? next.originalError;
  }
  return chain;
}

/**
 * The variable-naming sentence for an error from connecting to a secured Kafka, or undefined when the
 * error is not about security (a broker still starting, a network cut: worth retrying).
 */
export function kafkaSecurityProblem(error: unknown, security?: KafkaSecurity): string | undefined {
  const caFrom = () => {
    const caFile = security?.describe().caFile;
    return caFile
      ? `the CA in KAFKA_SSL_CA_FILE (${caFile})`
      : "Node's public CAs (no KAFKA_SSL_CA_FILE set)";
  };
  for (const item of causes(error)) {
    const message = item.message ?? '';
    if (item.name === 'KafkaJSSASLAuthenticationError') {
      if (/not supported by the server/i.test(message)) {
        return `KAFKA_SASL_MECHANISM: the broker does not offer this mechanism (${message})`;
      }
      return `KAFKA_SASL_PASSWORD: the broker refused the SASL credentials of KAFKA_SASL_USERNAME; check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) and KAFKA_SASL_MECHANISM (${message})`;
    }
    const code = item.code ?? '';
    if (UNTRUSTED_CHAIN.has(code)) {
      return `KAFKA_SSL_CA_FILE: the broker's certificate is not signed by ${caFrom()} (${code})`;
    }
    if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
      return `KAFKA_BROKERS: the broker's certificate is not valid now (${code})`;
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return `KAFKA_BROKERS: the broker's certificate is not issued for the host name in KAFKA_BROKERS; use a name the certificate lists (${message.replace(/^Connection error: /, '')})`;
    }
    if (/alert certificate required|CERTIFICATE_REQUIRED/i.test(`${code} ${message}`)) {
      return 'KAFKA_SSL_CERT_FILE: the broker requires a client certificate (mTLS): set KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE';
    }
    if (
      /alert (bad certificate|unknown ca|certificate unknown)|BAD_CERTIFICATE|UNKNOWN_CA/i.test(
        `${code} ${message}`,
      )
    ) {
      return 'KAFKA_SSL_CERT_FILE: the broker rejected the client certificate (not signed by a CA it trusts, or revoked)';
    }
    if (/wrong version number|WRONG_VERSION_NUMBER|packet length too long/i.test(`${code} ${message}`)) {
      return "KAFKA_SSL: the broker's listener does not speak TLS: use its SSL/SASL_SSL port or set KAFKA_SSL=false";
    }
  }
  return undefined;
}

/** A ConfigError naming the variable when the error is a refused secured connection; else undefined. */
export function kafkaSecurityError(error: unknown, security?: KafkaSecurity): ConfigError | undefined {
  if (error instanceof ConfigError) return error;
  const problem = kafkaSecurityProblem(error, security);
  return problem === undefined ? undefined : new ConfigError([problem]);
}

/**
 * Connects once with the service's client when Kafka is secured, before the service's own connect
 * loops: a refused password, CA or client certificate throws a ConfigError naming the variable; an
 * unreachable broker is left to the caller's retries (the sink spools meanwhile). Plaintext: no-op.
 */
export async function verifyKafkaSecurity(kafka: Kafka, security: KafkaSecurity): Promise<void> {
  if (security.describe().protocol === 'PLAINTEXT') return;
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    await admin.connect();
  } catch (error) {
    const refused = kafkaSecurityError(error, security);
    if (refused) throw refused;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The secured listeners of the test stack (test/stack/stack.sh): SASL_SSL with SCRAM users, and SSL
 * with client certificates required, on the same broker as KAFKA_BROKERS. Taken from the environment
 * (eval "$(test/stack/stack.sh env)") or else from the env file stack.sh writes into its directory, so
 * a suite finds them the way it finds KAFKA_BROKERS. Secrets come as file paths, never as values.
 */
export interface SecureKafkaStack {
  saslSslBrokers: string[];
  mtlsBrokers: string[];
  /** The stack CA that signed the broker's (and the secured Elasticsearch's) certificate. */
  caFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  saslUsername: string;
  saslPasswordFile: string;
}

/** `export NAME=value` lines of a stack env file. */
export function readStackEnvFile(file: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) values[match[1]!] = match[2]!;
  }
  return values;
}

/** The variables of the stack in `dir` (default KAUDIT_STACK_DIR, else /tmp/kaudit-stack), env first. */
export function stackVariables(
  env: NodeJS.ProcessEnv = process.env,
  dir = env.KAUDIT_STACK_DIR ?? '/tmp/kaudit-stack',
): Record<string, string | undefined> {
  const file = join(dir, 'env');
  return { ...(existsSync(file) ? readStackEnvFile(file) : {}), ...env };
}

export function secureKafkaStack(env: NodeJS.ProcessEnv = process.env): SecureKafkaStack {
  const vars = stackVariables(env);
  const need = (name: string): string => {
    const value = vars[name];
    if (!value) {
      throw new Error(
        `${name} is not set and not in the stack's env file: start the stack with test/stack/stack.sh up ` +
          '(a stack started by an older stack.sh has no secured listeners: stop it and start it again)',
      );
    }
    return value;
  };
  const list = (name: string) =>
    need(name)
      .split(',')
      .map((broker) => broker.trim())
      .filter(Boolean);
  return {
    saslSslBrokers: list('KAFKA_SASL_SSL_BROKERS'),
    mtlsBrokers: list('KAFKA_MTLS_BROKERS'),
    caFile: need('KAUDIT_STACK_CA_FILE'),
    clientCertFile: need('KAUDIT_STACK_CLIENT_CERT_FILE'),
    clientKeyFile: need('KAUDIT_STACK_CLIENT_KEY_FILE'),
    saslUsername: need('KAUDIT_STACK_SASL_USERNAME'),
    saslPasswordFile: need('KAUDIT_STACK_SASL_PASSWORD_FILE'),
  };
}

/** The client variables (KAFKA_SSL_*, KAFKA_SASL_*) for one of the stack's secured listeners. */
export function secureKafkaEnv(
  stack: SecureKafkaStack,
  listener: 'sasl-ssl' | 'mtls',
  mechanism: 'scram-sha-512' | 'scram-sha-256' | 'plain' = 'scram-sha-512',
): { brokers: string[]; env: Record<string, string> } {
  if (listener === 'mtls') {
    return {
      brokers: stack.mtlsBrokers,
      env: {
        KAFKA_SSL: 'true',
        KAFKA_SSL_CA_FILE: stack.caFile,
        KAFKA_SSL_CERT_FILE: stack.clientCertFile,
        KAFKA_SSL_KEY_FILE: stack.clientKeyFile,
      },
    };
  }
  return {
    brokers: stack.saslSslBrokers,
    env: {
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: stack.caFile,
      KAFKA_SASL_MECHANISM: mechanism,
      KAFKA_SASL_USERNAME: stack.saslUsername,
      KAFKA_SASL_PASSWORD_FILE: stack.saslPasswordFile,
    },
  };
}

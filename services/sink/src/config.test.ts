import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@kaudit/service-kit';
import { insecureWarnings, loadSinkConfig } from './config';

const dir = mkdtempSync(join(tmpdir(), 'sink-config-'));
const file = (name: string) => {
  const path = join(dir, name);
  writeFileSync(path, 'x');
  return path;
};
const policy = join(__dirname, '../../../policies/redaction.yaml');
const secure = {
  SINK_TLS_CERT_FILE: file('tls.crt'),
  SINK_TLS_KEY_FILE: file('tls.key'),
  SINK_CLIENT_CA_FILE: file('ca.crt'),
  SINK_REDACTION_POLICY_FILE: policy,
};

function problems(env: Record<string, string>): string[] {
  try {
    loadSinkConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('sink > config', () => {
  it('SINK_WORKERS: 1 by default, a whole number up to 64, or auto (one per core)', () => {
    expect(loadSinkConfig(secure).workers).toBe(1);
    expect(loadSinkConfig({ ...secure, SINK_WORKERS: '3' }).workers).toBe(3);
    expect(loadSinkConfig({ ...secure, SINK_WORKERS: 'auto' }).workers).toBe(availableParallelism());
    expect(problems({ ...secure, SINK_WORKERS: '0' })).toEqual([
      expect.stringMatching(/^SINK_WORKERS: must be at least 1/),
    ]);
    expect(problems({ ...secure, SINK_WORKERS: 'many' })).toEqual([
      expect.stringMatching(/^SINK_WORKERS: must be a whole number/),
    ]);
  });

  it('has the documented defaults', () => {
    const config = loadSinkConfig(secure);
    expect(config).toMatchObject({
      kafkaBrokers: ['localhost:9092'],
      port: 8443,
      host: '0.0.0.0',
      eventsTopic: 'k8s-audit.events',
      dlqTopic: 'k8s-audit.dlq',
      clusterName: 'default',
      maxBodyBytes: 512 * 1024 * 1024,
      maxEventBytes: 8 * 1024 * 1024,
      requestTimeoutMs: 10_000,
      tlsHandshakeTimeoutMs: 5000,
      insecureDev: false,
      tls: {
        certFile: secure.SINK_TLS_CERT_FILE,
        keyFile: secure.SINK_TLS_KEY_FILE,
        caFile: secure.SINK_CLIENT_CA_FILE,
      },
    });
    expect(config.redactionPolicy.rules.map((r) => r.resource)).toEqual([
      'secrets',
      'serviceaccounts',
      'tokenreviews',
    ]);
    expect(insecureWarnings(config)).toEqual([]);
  });

  it('refuses to start without TLS and client auth, naming every variable at once', () => {
    const found = problems({
      SINK_REDACTION_POLICY_FILE: policy,
      SINK_PORT: 'http',
      SINK_REQUEST_TIMEOUT_MS: '45s',
    });
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^SINK_PORT: /),
        expect.stringMatching(/^SINK_REQUEST_TIMEOUT_MS: must be between 1s and 25s/),
        expect.stringMatching(/^SINK_TLS_CERT_FILE: is required \(HTTPS\) unless SINK_INSECURE_DEV=true/),
        expect.stringMatching(/^SINK_TLS_KEY_FILE: is required/),
        expect.stringMatching(
          /^SINK_CLIENT_CA_FILE: one of SINK_CLIENT_CA_FILE \(mTLS\) or SINK_AUTH_TOKEN_FILE/,
        ),
        expect.stringMatching(/^SINK_AUTH_TOKEN_FILE: /),
      ]),
    );
  });

  it.each([
    [{ SINK_TLS_KEY_FILE: undefined }, /^SINK_TLS_KEY_FILE: is required when the other/],
    [
      { SINK_CLIENT_CA_FILE: join(dir, 'missing.crt') },
      /^SINK_CLIENT_CA_FILE: file .*missing\.crt does not exist/,
    ],
    [
      { SINK_CLIENT_ALLOWED_SUBJECTS: 'apiserver=bad name' },
      /^SINK_CLIENT_ALLOWED_SUBJECTS: "apiserver=bad name" must be CN or CN=cluster/,
    ],
    [{ SINK_INSECURE_DEV: 'maybe' }, /^SINK_INSECURE_DEV: must be true or false/],
    [{ SINK_CLUSTER_NAME: 'prod/eu' }, /^SINK_CLUSTER_NAME: /],
    [{ SINK_SPOOL_MAX_BYTES: '1000' }, /^SINK_SPOOL_MAX_BYTES: must be at least/],
    [
      { SINK_TLS_HANDSHAKE_TIMEOUT_MS: '2m' },
      /^SINK_TLS_HANDSHAKE_TIMEOUT_MS: must be between 100ms and 60s/,
    ],
    [
      { SINK_REDACTION_POLICY_FILE: join(dir, 'tls.crt') },
      /^SINK_REDACTION_POLICY_FILE: .*tls\.crt: \(root\): /,
    ],
  ])('names the bad variable in %j', (override, message) => {
    const env = { ...secure, ...override } as Record<string, string>;
    for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
    expect(problems(env)).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
  });

  it('maps allowed certificate subjects to clusters', () => {
    const config = loadSinkConfig({
      ...secure,
      SINK_CLIENT_ALLOWED_SUBJECTS: 'apiserver-eu=prod-eu, shipper',
    });
    expect([...config.allowedSubjects]).toEqual([
      ['apiserver-eu', 'prod-eu'],
      ['shipper', undefined],
    ]);
  });

  it('allows plain HTTP without client auth only with SINK_INSECURE_DEV, and says what it relaxed', () => {
    const config = loadSinkConfig({ SINK_INSECURE_DEV: 'true', SINK_REDACTION_POLICY_FILE: policy });
    expect(config.tls).toBeUndefined();
    expect(insecureWarnings(config)).toEqual([
      expect.stringMatching(/plain HTTP/),
      expect.stringMatching(/no client authentication/),
    ]);
  });
});

describe('sink > config > managed-cluster sources', () => {
  const tls = { SINK_TLS_CERT_FILE: secure.SINK_TLS_CERT_FILE, SINK_TLS_KEY_FILE: secure.SINK_TLS_KEY_FILE };

  it('are off by default', () => {
    const config = loadSinkConfig(secure);
    expect(config.sources).toEqual({
      firehoseAccessKeyFile: undefined,
      pubsubJwksFile: undefined,
      pubsubAudience: undefined,
      pubsubServiceAccount: undefined,
      pubsubTokenFile: undefined,
    });
    expect(config.eventHub).toBeUndefined();
  });

  it('a source credential alone is client authentication enough to start', () => {
    const config = loadSinkConfig({
      ...tls,
      SINK_REDACTION_POLICY_FILE: policy,
      SINK_FIREHOSE_ACCESS_KEY_FILE: file('firehose-keys'),
    });
    expect(config.sources.firehoseAccessKeyFile).toMatch(/firehose-keys$/);
  });

  it.each([
    [
      { SINK_PUBSUB_JWKS_FILE: file('jwks.json') },
      /^SINK_PUBSUB_AUDIENCE: is required with SINK_PUBSUB_JWKS_FILE/,
    ],
    [{ SINK_PUBSUB_AUDIENCE: 'https://x' }, /^SINK_PUBSUB_AUDIENCE: only used with SINK_PUBSUB_JWKS_FILE/],
    [
      { SINK_FIREHOSE_ACCESS_KEY_FILE: join(dir, 'missing') },
      /^SINK_FIREHOSE_ACCESS_KEY_FILE: file .* does not exist/,
    ],
    [{ SINK_EVENTHUB_BROKERS: 'hub.servicebus.windows.net:9093' }, /^SINK_EVENTHUB_TOPIC: is required/],
    [
      {
        SINK_EVENTHUB_BROKERS: 'h:9093',
        SINK_EVENTHUB_TOPIC: 't',
        SINK_EVENTHUB_KAFKA_SASL_MECHANISM: 'plain',
      },
      /^SINK_EVENTHUB_KAFKA_SASL_USERNAME: required with SINK_EVENTHUB_KAFKA_SASL_MECHANISM=plain/,
    ],
    [
      {
        SINK_EVENTHUB_BROKERS: 'h:9093',
        SINK_EVENTHUB_TOPIC: 't',
        SINK_EVENTHUB_KAFKA_SASL_MECHANISM: 'plain',
      },
      /^SINK_EVENTHUB_KAFKA_SASL_MECHANISM: plain sends the password in clear text; set SINK_EVENTHUB_KAFKA_SSL=true/,
    ],
  ])('names the bad variable in %j', (override, message) => {
    expect(problems({ ...secure, ...override })).toEqual(
      expect.arrayContaining([expect.stringMatching(message)]),
    );
  });

  it('reads the Event Hub side under its own prefix, apart from kaudit Kafka', () => {
    const config = loadSinkConfig({
      ...secure,
      SINK_EVENTHUB_BROKERS: 'kaudit-hub.servicebus.windows.net:9093',
      SINK_EVENTHUB_TOPIC: 'aks-audit',
      SINK_EVENTHUB_KAFKA_SSL: 'true',
      SINK_EVENTHUB_KAFKA_SASL_MECHANISM: 'plain',
      SINK_EVENTHUB_KAFKA_SASL_USERNAME: '$ConnectionString',
      SINK_EVENTHUB_KAFKA_SASL_PASSWORD:
        'Endpoint=sb://kaudit-hub/;SharedAccessKeyName=x;SharedAccessKey=MKhubsecret01',
    });
    expect(config.kafkaSecurity.describe().protocol).toBe('PLAINTEXT');
    expect(config.eventHub).toMatchObject({
      brokers: ['kaudit-hub.servicebus.windows.net:9093'],
      topic: 'aks-audit',
      groupId: 'kaudit-sink',
    });
    expect(config.eventHub?.security.describe()).toEqual({
      protocol: 'SASL_SSL',
      saslMechanism: 'plain',
      saslUsername: '$ConnectionString',
    });
    expect(JSON.stringify(config.eventHub)).not.toContain('MKhubsecret01');
  });
});

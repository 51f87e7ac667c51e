import { ConfigError } from '@kaudit/service-kit';
import { describeConfig, loadIndexerConfig } from './config';

const problemsOf = (env: Record<string, string>) => {
  try {
    loadIndexerConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('indexer > config', () => {
  it('has working defaults', () => {
    const config = loadIndexerConfig({});
    expect(config).toMatchObject({
      kafkaBrokers: ['localhost:9092'],
      es: { node: 'http://127.0.0.1:9200', requestTimeoutMs: 30_000 },
      namespace: 'default',
      retention: '365d',
      numberOfReplicas: 1,
      ilm: false,
      eventsTopic: 'k8s-audit.events',
      alertsTopic: 'k8s-audit.alerts',
      dlqTopic: 'k8s-audit.dlq',
      groupId: 'kaudit-indexer',
      lagIntervalMs: 10_000,
      port: 9302,
    });
  });

  it('reads every variable by its documented name', () => {
    const config = loadIndexerConfig({
      KAFKA_BROKERS: 'k1:9092, k2:9092',
      ES_NODE: 'https://es:9200',
      ES_USERNAME: 'kaudit',
      ES_PASSWORD: 's3cret',
      ES_DATA_STREAM_NAMESPACE: 'prod',
      ES_RETENTION: '90d',
      ES_NUMBER_OF_REPLICAS: '0',
      ES_ILM_POLICY: 'true',
      AUDIT_EVENTS_TOPIC: 'e',
      AUDIT_ALERTS_TOPIC: 'a',
      AUDIT_DLQ_TOPIC: 'd',
      INDEXER_GROUP_ID: 'g',
      INDEXER_BATCH_MAX_DOCS: '500',
      INDEXER_BATCH_MAX_BYTES: '1048576',
      INDEXER_FLUSH_INTERVAL_MS: '250ms',
      INDEXER_LAG_INTERVAL_MS: '2s',
      INDEXER_PORT: '0',
      LOG_LEVEL: 'debug',
    });
    expect(config).toMatchObject({
      kafkaBrokers: ['k1:9092', 'k2:9092'],
      es: { node: 'https://es:9200', username: 'kaudit', password: 's3cret' },
      namespace: 'prod',
      retention: '90d',
      numberOfReplicas: 0,
      ilm: true,
      eventsTopic: 'e',
      alertsTopic: 'a',
      dlqTopic: 'd',
      groupId: 'g',
      batchMaxDocs: 500,
      batchMaxBytes: 1048576,
      flushIntervalMs: 250,
      lagIntervalMs: 2000,
      port: 0,
      logLevel: 'debug',
    });
  });

  it('names every bad variable at once', () => {
    const problems = problemsOf({
      ES_NODE: 'not a url',
      ES_API_KEY: 'k',
      ES_USERNAME: 'u',
      ES_CA_FILE: '/nonexistent/ca.pem',
      ES_DATA_STREAM_NAMESPACE: 'Prod-1',
      ES_RETENTION: '1y',
      INDEXER_BATCH_MAX_DOCS: '0',
      INDEXER_FLUSH_INTERVAL_MS: 'soon',
      INDEXER_LAG_INTERVAL_MS: '10ms',
      AUDIT_ALERTS_TOPIC: 'k8s-audit.events',
    }).join('\n');
    for (const name of [
      'ES_NODE',
      'ES_API_KEY',
      'ES_USERNAME/ES_PASSWORD',
      'ES_CA_FILE',
      'ES_DATA_STREAM_NAMESPACE',
      'ES_RETENTION',
      'INDEXER_BATCH_MAX_DOCS',
      'INDEXER_FLUSH_INTERVAL_MS',
      'INDEXER_LAG_INTERVAL_MS',
      'AUDIT_DLQ_TOPIC',
    ]) {
      expect(problems).toContain(`${name}:`);
    }
  });

  it('never describes credentials', () => {
    const config = loadIndexerConfig({ ES_NODE: 'https://es:9200', ES_API_KEY: 'top-secret-key' });
    const text = JSON.stringify(describeConfig(config));
    expect(text).not.toContain('top-secret-key');
    expect(text).toContain('api-key');
  });
});

import { stackAddresses } from './stack';

describe('devstack > stack > stackAddresses', () => {
  it('passes on the caller’s Kafka TLS/SASL variables, and nothing else', () => {
    const addresses = stackAddresses({
      KAFKA_BROKERS: '127.0.0.1:9094',
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'kaudit',
      KAFKA_SASL_PASSWORD_FILE: '/run/secret',
      KAFKA_SSL_CA_FILE: '',
      KAFKA_CLIENT_ID: 'not-a-security-variable',
    });
    expect(addresses.kafkaBrokers).toEqual(['127.0.0.1:9094']);
    expect(addresses.kafkaSecurityEnv).toEqual({
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'kaudit',
      KAFKA_SASL_PASSWORD_FILE: '/run/secret',
    });
  });

  it('is plaintext when none is set', () => {
    expect(stackAddresses({}).kafkaSecurityEnv).toEqual({});
  });
});

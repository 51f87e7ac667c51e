import { ConfigError } from '@kaudit/service-kit';
import { DEFAULT_STATE_TOPIC, loadDetectorConfig } from './config';

const policyText = 'timezone: Europe/Berlin\n';
const read = (files: Record<string, string>) => (path: string) => {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT: no such file '${path}'`);
  return text;
};

describe('detector > config', () => {
  it('has the documented defaults', () => {
    const { env, policy } = loadDetectorConfig(
      { DETECTOR_INSTANCE_ID: 'd-0' },
      read({ 'policies/detection.yaml': policyText }),
    );
    expect(env).toMatchObject({
      KAFKA_BROKERS: ['localhost:9092'],
      AUDIT_EVENTS_TOPIC: 'k8s-audit.events',
      AUDIT_ALERTS_TOPIC: 'k8s-audit.alerts',
      DETECTOR_POLICY_FILE: 'policies/detection.yaml',
      DETECTOR_STATE_TOPIC: DEFAULT_STATE_TOPIC,
      DETECTOR_GROUP_ID: 'kaudit-detector',
      DETECTOR_PORT: 9301,
      DETECTOR_IDLE_FLUSH: 30_000,
      DETECTOR_BATCH_WAIT_MS: 500,
      DETECTOR_MAX_BATCH_BYTES: 8 * 1024 * 1024,
      LOG_LEVEL: 'info',
    });
    expect(DEFAULT_STATE_TOPIC).toBe('k8s-audit.detector-state');
    expect(policy.timezone).toBe('Europe/Berlin');
  });

  it('DETECTOR_MAX_BATCH_BYTES: 1 to 64 MiB', () => {
    const files = read({ 'policies/detection.yaml': policyText });
    expect(
      loadDetectorConfig({ DETECTOR_MAX_BATCH_BYTES: '33554432' }, files).env.DETECTOR_MAX_BATCH_BYTES,
    ).toBe(32 * 1024 * 1024);
    expect(() => loadDetectorConfig({ DETECTOR_MAX_BATCH_BYTES: '1000' }, files)).toThrow(
      /DETECTOR_MAX_BATCH_BYTES: must be at least 1048576/,
    );
  });

  it('names every bad variable and the policy problem at once', () => {
    let error: unknown;
    try {
      loadDetectorConfig(
        { DETECTOR_PORT: 'ninety', DETECTOR_IDLE_FLUSH: 'soon', DETECTOR_POLICY_FILE: 'p.yaml' },
        read({ 'p.yaml': 'businessHours:\n  start: "8am"\n' }),
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/DETECTOR_PORT: /);
    expect(problems).toMatch(/DETECTOR_IDLE_FLUSH: /);
    expect(problems).toMatch(/DETECTOR_POLICY_FILE: .*businessHours\.start: must be HH:MM/);
  });

  it('takes a batch wait of up to 10s, 0 to answer at once', () => {
    const files = read({ 'policies/detection.yaml': policyText });
    expect(loadDetectorConfig({ DETECTOR_BATCH_WAIT_MS: '2s' }, files).env.DETECTOR_BATCH_WAIT_MS).toBe(2000);
    expect(loadDetectorConfig({ DETECTOR_BATCH_WAIT_MS: '0' }, files).env.DETECTOR_BATCH_WAIT_MS).toBe(0);
    expect(() => loadDetectorConfig({ DETECTOR_BATCH_WAIT_MS: '1m' }, files)).toThrow(
      /DETECTOR_BATCH_WAIT_MS: must be at most 10s/,
    );
  });

  it('reports a missing policy file', () => {
    expect(() => loadDetectorConfig({ DETECTOR_POLICY_FILE: 'nope.yaml' }, read({}))).toThrow(
      /DETECTOR_POLICY_FILE: cannot read nope\.yaml/,
    );
  });
});

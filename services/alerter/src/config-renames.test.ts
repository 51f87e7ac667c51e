import { parseConfig } from '@kaudit/service-kit';
import { ENV_RENAMES, EnvSchema } from './config';

// The names with units are the documented ones; the old names are contracts deployments already set.
describe('alerter > config > renamed variables', () => {
  it.each([
    ['ALERTER_COMMIT_INTERVAL_MS', 'ALERTER_COMMIT_INTERVAL', '2s', 2000],
    ['ALERTER_THROTTLE_FLUSH_INTERVAL_MS', 'ALERTER_THROTTLE_FLUSH_INTERVAL', '10s', 10_000],
    ['ALERTER_THROTTLE_GRACE_MS', 'ALERTER_THROTTLE_GRACE', '1m', 60_000],
    ['ALERTER_DEDUP_RETENTION_MS', 'ALERTER_DEDUP_RETENTION', '2w', 1_209_600_000],
    ['ALERTER_DEDUP_LOAD_TIMEOUT_MS', 'ALERTER_DEDUP_LOAD_TIMEOUT', '3m', 180_000],
    ['ALERTER_DRAIN_TIMEOUT_MS', 'ALERTER_DRAIN_TIMEOUT', '250ms', 250],
    ['KAFKA_STARTUP_TIMEOUT_MS', 'KAFKA_STARTUP_TIMEOUT', '90s', 90_000],
  ])('%s, and its old name %s, set the same thing', (name, old, text, ms) => {
    for (const env of [{ [name]: text }, { [old]: text }, { [name]: text, [old]: text }]) {
      const { value, problems } = parseConfig(EnvSchema, env, ENV_RENAMES);
      expect(problems).toEqual([]);
      expect((value as Record<string, unknown>)[old]).toBe(ms);
    }
    const both = parseConfig(EnvSchema, { [name]: text, [old]: '8s' }, ENV_RENAMES);
    expect(both.problems).toEqual([
      expect.stringMatching(new RegExp(`^${name}: set together with its old name ${old}`)),
    ]);
    const bad = parseConfig(EnvSchema, { [name]: 'soon' }, ENV_RENAMES);
    expect(bad.problems).toEqual([expect.stringMatching(new RegExp(`^${name}: must be a duration`))]);
  });
});

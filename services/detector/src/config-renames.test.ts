import { parseConfig } from '@kaudit/service-kit';
import { ENV_RENAMES, EnvSchema } from './config';

// The names with units are the documented ones; the old names are contracts deployments already set.
describe('detector > config > renamed variables', () => {
  it.each([
    ['DETECTOR_IDLE_FLUSH_MS', 'DETECTOR_IDLE_FLUSH', '5s', 5000],
    ['DETECTOR_TRANSACTION_TIMEOUT_MS', 'DETECTOR_TRANSACTION_TIMEOUT', '2m', 120_000],
    ['DETECTOR_SESSION_TIMEOUT_MS', 'DETECTOR_SESSION_TIMEOUT', '45s', 45_000],
    ['KAFKA_STARTUP_TIMEOUT_MS', 'KAFKA_STARTUP_TIMEOUT', '2w', 1_209_600_000],
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

import type { Finding } from '@kaudit/audit-schema';
import { findingLines, startOptionsFromEnv } from './start';

const finding: Finding = {
  id: 'f-1',
  rule: 'secret-off-hours',
  severity: 'high',
  title: 'Secret read outside business hours',
  summary: 'the summary',
  cluster: 'local',
  identity: { username: 'alice@example.com', kind: 'user', groups: [] },
  sourceIP: '203.0.113.10',
  verbs: ['get'],
  objects: [{ namespace: 'default', name: 'db-password' }],
  firstSeen: '2026-01-06T01:14:00.000Z',
  lastSeen: '2026-01-06T01:14:00.000Z',
  auditIDs: ['00000000-0000-4000-8000-000000000001'],
  count: 1,
  mitre: ['T1552.007'],
};

describe('devstack > start', () => {
  test('a finding is printed as two lines', () => {
    const text = findingLines(Buffer.from(JSON.stringify(finding)), 'alerts/0@1');
    expect(text.split('\n')).toEqual([
      expect.stringMatching(/^finding {2}high {5}secret-off-hours +alice@example.com from 203.0.113.10$/),
      '         the summary',
      '',
    ]);
  });

  test('a later revision of a finding is shown as an update of it, not as another finding', () => {
    const text = findingLines(Buffer.from(JSON.stringify({ ...finding, revision: 2 })), 'alerts/0@2');
    expect(text.split('\n')[0]).toMatch(/^update {3}high {5}secret-off-hours +alice@example.com/);
  });

  test('a message that is not JSON, or not a finding, is one line and no throw', () => {
    expect(findingLines(Buffer.from('not json {'), 'alerts/0@7')).toBe('skipped  alerts/0@7: not JSON\n');
    expect(findingLines(null, 'alerts/1@8')).toBe('skipped  alerts/1@8: no value\n');
    expect(findingLines(Buffer.from('{"id":"x"}'), 'alerts/0@9')).toBe(
      'skipped  alerts/0@9: not a finding\n',
    );
  });

  test("ports and the state directory come from the services' own variables, unset ones keep the defaults", () => {
    expect(startOptionsFromEnv({})).toEqual({ ports: {} });
    expect(
      startOptionsFromEnv({
        SINK_PORT: '0',
        ALERTER_PORT: '19303',
        KAUDIT_STATE_DIR: '/tmp/x',
        DETECTOR_PORT: ' ',
      }),
    ).toEqual({ ports: { sink: 0, alerter: 19303 }, stateDir: '/tmp/x' });
    expect(() => startOptionsFromEnv({ INDEXER_PORT: 'nine' })).toThrow(
      'INDEXER_PORT: must be a port, not "nine"',
    );
  });
});

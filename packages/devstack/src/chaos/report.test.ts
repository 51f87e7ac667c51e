import { markdown } from './report';
import { problemsOf, type ScenarioResult } from './run';
import type { Counts } from './verify';

const clean: Counts = {
  events: { acked: 1200, stored: 1200, missing: 0, duplicated: 0 },
  findings: {
    expected: 3,
    onTopic: 3,
    topicMessages: 3,
    inElasticsearch: 3,
    esDuplicated: 0,
    atSlack: 3,
    slackDuplicated: 0,
    unexpected: 0,
  },
};

describe('devstack > chaos checks and report', () => {
  it('passes a scenario only when nothing acknowledged is lost and nothing is stored or alerted twice', () => {
    expect(problemsOf(clean)).toEqual([]);
    const lossy: Counts = {
      events: { ...clean.events, missing: 2, duplicated: 1 },
      findings: { ...clean.findings, onTopic: 2, atSlack: 1, slackDuplicated: 1, unexpected: 4 },
    };
    expect(problemsOf(lossy)).toEqual([
      '2 acknowledged events are not in Elasticsearch',
      '1 events are stored more than once',
      '1 expected findings are not on the alerts topic',
      '2 expected findings never reached Slack',
      '1 findings alerted twice at Slack',
      '4 unexpected findings',
    ]);
  });

  it('writes one table row a scenario with its counts, recovery, memory and verdict', () => {
    const result: ScenarioResult = {
      id: 1,
      name: 'kafka-down',
      title: 'Kafka stopped under load, then restarted',
      outageSeconds: 600,
      rate: 1500,
      achievedRate: 1490,
      counts: clean,
      refusals: { '503': 4 },
      refused503Events: 1600,
      recoverySeconds: 42.4,
      peakMemoryMiB: { sink: 310, detector: 420 },
      restarts: {},
      unplannedExits: {},
      policyExits: [],
      passed: true,
      problems: [],
    };
    const text = markdown({
      startedAt: '2026-12-02T06:00:00.000Z',
      machine: { cpus: 2, model: 'AMD EPYC', memoryGiB: 24, loadAverageAtStart: 1.5 },
      settings: { rate: 1500, outageSeconds: 600 },
      scenarios: [
        result,
        { ...result, id: 3, recoverySeconds: null, passed: false, problems: ['x lost'] },
        { ...result, id: 4, restarts: { alerter: 1 }, policyExits: ['alerter: dead: consumer crashed'] },
      ],
    });
    const rows = text.split('\n').filter((line) => line.startsWith('| 1 ') || line.startsWith('| 3 '));
    expect(rows[0]).toContain(
      '| 1200 | 1200 | 0 | 0 | 1600 | 3 / 3 / 3 / 3 | 0 | 0 | 42 s | sink 310, detector 420 | — | pass |',
    );
    expect(rows[1]).toContain('| not in 10 min |');
    expect(rows[1]).toContain('FAIL: x lost');
    // A restart by the service's own crash policy is shown with its reason; it does not fail the scenario.
    expect(text).toContain('| alerter 1 (by crash policy: alerter: dead: consumer crashed) | pass |');
    expect(text).toContain('on 2 × AMD EPYC, 24 GiB (load average 1.5 at start)');
  });
});

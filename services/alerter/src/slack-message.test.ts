import { loadSampleEvents } from '@kaudit/testkit';
import { buildFinding, findingFromEvent } from '../test/finding-fixture';
import { digestAlert, findingAlert } from './alert';
import { kibanaFindingsUrl } from './kibana-link';
import {
  buildDigestMessage,
  buildFindingMessage,
  escapeMrkdwn,
  formatTimeRange,
  SEVERITY_STYLE,
} from './slack-message';
import { buildHecEvent, hecAuthorization } from './splunk-hec';
import { createThrottle } from './throttle';

const kibana = { baseUrl: 'https://kibana.example.com/', dataViewId: 'kaudit-findings' };

/** All text of a message, for "does it say X" assertions. */
function allText(value: unknown): string {
  return JSON.stringify(value);
}

describe('alerter > slack-message', () => {
  // Real event: alice impersonated by system:admin lists secrets in ns1 (audit2rbac demo log).
  const event = loadSampleEvents('audit2rbac/demo-v1beta1.jsonl').find(
    (e) => e.objectRef?.resource === 'secrets',
  )!;
  const finding = findingFromEvent(event, 'secret-new-source-ip', 'prod-eu-1');

  test('carries severity colour and emoji, title, identity, source IP, objects, time, summary and a Kibana link', () => {
    const message = buildFindingMessage(
      { ...finding, severity: 'critical', title: 'Secrets read from a new address' },
      {
        timezone: 'Europe/Berlin',
        kibana,
      },
    );
    const [attachment] = message.attachments;
    expect(attachment!.color).toBe(SEVERITY_STYLE.critical.color);
    expect(message.text).toContain(':fire: [CRITICAL] Secrets read from a new address — alice');
    const header = attachment!.blocks[0] as { type: string; text: { text: string } };
    expect(header).toMatchObject({
      type: 'header',
      text: { text: ':fire: Secrets read from a new address' },
    });
    const text = allText(attachment!.blocks);
    expect(text).toContain('`alice` (user)');
    expect(text).toContain('impersonated by `system:admin`');
    expect(text).toContain('`::1`'); // the source IP
    expect(text).toContain('`ns1/*`'); // a list: namespace, no name
    expect(text).toContain(finding.summary);
    // 2017-09-11T20:29:04Z is 22:29:04 in Berlin (CEST).
    expect(text).toContain('2017-09-11 22:29:04 GMT+2');
    const actions = attachment!.blocks.find((b) => b.type === 'actions') as {
      elements: Array<{ url: string }>;
    };
    expect(actions.elements[0]!.url).toBe(
      kibanaFindingsUrl(kibana, [finding.id], finding.firstSeen, finding.lastSeen),
    );
  });

  test('without a Kibana base URL there is no button', () => {
    const message = buildFindingMessage(finding, { timezone: 'UTC' });
    expect(message.attachments[0]!.blocks.some((b) => b.type === 'actions')).toBe(false);
  });

  test.each([
    ['low', '#439FE0', ':large_blue_circle:'],
    ['medium', '#ECB22E', ':warning:'],
    ['high', '#E8710A', ':rotating_light:'],
    ['critical', '#D72B3F', ':fire:'],
  ] as const)('%s findings are %s with %s', (severity, color, emoji) => {
    const message = buildFindingMessage(buildFinding({ severity }), { timezone: 'UTC' });
    expect(message.attachments[0]!.color).toBe(color);
    expect(message.text.startsWith(emoji)).toBe(true);
  });

  test('client-controlled text cannot inject mentions or links', () => {
    const evil = buildFinding({
      summary: 'read by <!channel> <https://evil.example|click> & more',
      identity: { username: '<@U123>`x', kind: 'user', groups: [] },
    });
    const text = allText(buildFindingMessage(evil, { timezone: 'UTC' }).attachments[0]!.blocks);
    expect(text).not.toContain('<!channel>');
    expect(text).not.toContain('<https://evil');
    expect(text).not.toContain('<@U123>');
    expect(text).toContain('&lt;!channel&gt;');
    expect(escapeMrkdwn('a & <b>')).toBe('a &amp; &lt;b&gt;');
  });

  test('long object lists are cut with a count of the rest, and Block Kit limits hold', () => {
    const many = buildFinding({
      title: 'x'.repeat(400),
      objects: Array.from({ length: 37 }, (_, i) => ({ namespace: 'team-a', name: `s-${i}` })),
    });
    const blocks = buildFindingMessage(many, { timezone: 'UTC' }).attachments[0]!.blocks;
    expect(allText(blocks)).toContain('…and 27 more');
    const header = blocks[0] as { text: { text: string } };
    expect(header.text.text.length).toBeLessThanOrEqual(150);
  });

  test('times: same day as a range, DST-aware', () => {
    expect(formatTimeRange('2026-03-29T00:30:00Z', '2026-03-29T01:30:00Z', 'Europe/Berlin')).toBe(
      '2026-03-29 01:30:00 – 03:30:00 GMT+2',
    );
    expect(formatTimeRange('2026-01-06T01:14:00Z', '2026-01-06T01:14:00Z', 'America/New_York')).toBe(
      '2026-01-05 20:14:00 EST',
    );
  });

  test('a digest says how many more like this, for whom, with the rules and a link to them all', () => {
    const throttle = createThrottle<number>();
    const limit = { maxAlerts: 1, windowMs: 600_000 };
    for (let i = 0; i < 38; i++) {
      const t = new Date(Date.parse('2026-01-06T10:00:00Z') + i * 1000).toISOString();
      throttle.admit(
        'secops',
        limit,
        buildFinding({ firstSeen: t, lastSeen: t, severity: i === 5 ? 'critical' : 'medium' }),
        i,
      );
    }
    const [due] = throttle.due(Date.parse('2026-01-06T10:10:00Z'));
    const message = buildDigestMessage(due!.digest, { timezone: 'UTC', kibana });
    expect(message.text).toBe('and 37 more like this for alice@example.com (prod-eu-1)');
    expect(message.attachments[0]!.color).toBe(SEVERITY_STYLE.critical.color);
    const text = allText(message.attachments[0]!.blocks);
    expect(text).toContain('and 37 more like this');
    expect(text).toContain('`secret-off-hours` ×37');
    expect(text).toContain('at most 1 alert per identity per window');
    const actions = message.attachments[0]!.blocks.find((b) => b.type === 'actions') as {
      elements: Array<{ url: string }>;
    };
    expect(decodeURIComponent(actions.elements[0]!.url)).toContain(`"${due!.digest.findingIds[36]}"`);
  });
});

describe('alerter > kibana-link', () => {
  test('opens Discover on the findings data view, by _id, around the event times', () => {
    const url = kibanaFindingsUrl(kibana, ["it's!"], '2026-01-06T01:14:00.000Z', '2026-01-06T01:20:00.000Z');
    expect(url.startsWith('https://kibana.example.com/app/discover#/?_g=')).toBe(true);
    const decoded = decodeURIComponent(url);
    expect(decoded).toContain("time:(from:'2026-01-06T00:14:00.000Z',to:'2026-01-06T02:20:00.000Z')");
    expect(decoded).toContain("dataViewId:'kaudit-findings'");
    // Rison escapes ' and ! with !; KQL quotes the id.
    expect(decoded).toContain(`query:'_id:("it!'s!!")'`);
  });
});

describe('alerter > splunk-hec', () => {
  test('a finding becomes a HEC event at its event time with indexed fields', () => {
    const finding = buildFinding({ id: 'f-hec', firstSeen: '2026-01-06T01:14:00.250Z' });
    expect(buildHecEvent(findingAlert(finding), { index: 'sec' })).toEqual({
      time: 1767662040.25,
      host: 'prod-eu-1',
      source: 'kaudit',
      sourcetype: 'kaudit:finding',
      index: 'sec',
      event: finding,
      fields: {
        kaudit_rule: 'secret-off-hours',
        kaudit_severity: 'high',
        kaudit_cluster: 'prod-eu-1',
        kaudit_identity: 'alice@example.com',
        kaudit_finding_id: 'f-hec',
        kaudit_mitre: ['T1552.007'],
      },
    });
    expect(hecAuthorization('tok')).toBe('Splunk tok');
  });

  test('a digest has its own sourcetype so finding counts stay exact', () => {
    const throttle = createThrottle<number>();
    const limit = { maxAlerts: 1, windowMs: 600_000 };
    throttle.admit('r', limit, buildFinding(), 1);
    throttle.admit('r', limit, buildFinding(), 2);
    const [due] = throttle.due(Date.parse('2026-01-07T00:00:00Z'));
    const event = buildHecEvent(digestAlert(due!.digest), { sourcetype: 'k:f' });
    expect(event.sourcetype).toBe('k:f:digest');
    expect(event.event).toBe(due!.digest);
    expect(event.index).toBeUndefined();
  });
});

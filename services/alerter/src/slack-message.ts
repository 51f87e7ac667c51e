import type { Finding, Severity } from '@kaudit/audit-schema';
import { DateTime } from 'luxon';
import type { Alert, Digest } from './alert';
import { type KibanaLinkOptions, kibanaFindingsUrl } from './kibana-link';

export const SEVERITY_STYLE: Record<Severity, { color: string; emoji: string }> = {
  low: { color: '#439FE0', emoji: ':large_blue_circle:' },
  medium: { color: '#ECB22E', emoji: ':warning:' },
  high: { color: '#E8710A', emoji: ':rotating_light:' },
  critical: { color: '#D72B3F', emoji: ':fire:' },
};

export interface SlackMessageOptions {
  /** IANA zone the times are shown in. */
  timezone: string;
  /** Without it the message has no Kibana button. */
  kibana?: KibanaLinkOptions;
}

// Block Kit limits (api.slack.com/reference/block-kit/blocks).
const HEADER_MAX = 150;
const SECTION_TEXT_MAX = 3000;
const FIELD_MAX = 2000;
const MAX_OBJECTS_SHOWN = 10;

type Block = Record<string, unknown>;

export interface SlackMessage {
  /** Notification and fallback text. */
  text: string;
  /** An attachment, because only attachments carry the colour bar; its blocks are Block Kit. */
  attachments: Array<{ color: string; fallback: string; blocks: Block[] }>;
}

/**
 * Everything in a finding came from an audit event a client could shape (usernames, user agents, object
 * names): escape Slack's control characters so nobody can inject a link, a mention or @channel.
 */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function plain(text: string, max: number) {
  return { type: 'plain_text', text: truncate(text, max), emoji: true };
}

function mrkdwn(text: string, max: number) {
  return { type: 'mrkdwn', text: truncate(text, max) };
}

/** "2026-01-05 11:00:00 CET", or a range when the times differ. */
export function formatTimeRange(firstSeen: string, lastSeen: string, zone: string): string {
  const first = DateTime.fromISO(firstSeen, { setZone: true }).setZone(zone);
  const last = DateTime.fromISO(lastSeen, { setZone: true }).setZone(zone);
  const full = 'yyyy-MM-dd HH:mm:ss ZZZZ';
  if (first.toMillis() === last.toMillis()) return first.toFormat(full);
  if (first.hasSame(last, 'day'))
    return `${first.toFormat('yyyy-MM-dd HH:mm:ss')} – ${last.toFormat('HH:mm:ss ZZZZ')}`;
  return `${first.toFormat(full)} – ${last.toFormat(full)}`;
}

function code(text: string): string {
  // A backtick inside would end the code span early.
  return `\`${escapeMrkdwn(text).replace(/`/g, "'")}\``;
}

function identityText(finding: Finding): string {
  let text = `${code(finding.identity.username)} (${finding.identity.kind})`;
  if (finding.identity.impersonator) text += `\nimpersonated by ${code(finding.identity.impersonator)}`;
  return text;
}

function objectsText(finding: Finding): string {
  if (finding.objects.length === 0) return '_none recorded_';
  const shown = finding.objects.slice(0, MAX_OBJECTS_SHOWN).map((o) => {
    const name = o.name ?? '*';
    return `• ${code(o.namespace ? `${o.namespace}/${name}` : `(cluster-wide)/${name}`)}`;
  });
  const more = finding.objects.length - shown.length;
  if (more > 0) shown.push(`…and ${more} more`);
  return shown.join('\n');
}

function kibanaButton(
  options: SlackMessageOptions,
  ids: string[],
  firstSeen: string,
  lastSeen: string,
): Block[] {
  if (!options.kibana) return [];
  return [
    {
      type: 'actions',
      elements: [
        {
          type: 'button',
          text: plain('Open in Kibana', 75),
          url: kibanaFindingsUrl(options.kibana, ids, firstSeen, lastSeen),
        },
      ],
    },
  ];
}

export function buildFindingMessage(finding: Finding, options: SlackMessageOptions): SlackMessage {
  const { color, emoji } = SEVERITY_STYLE[finding.severity];
  const when = formatTimeRange(finding.firstSeen, finding.lastSeen, options.timezone);
  const fallback = `${emoji} [${finding.severity.toUpperCase()}] ${finding.title} — ${finding.identity.username} (${finding.cluster})`;
  const blocks: Block[] = [
    { type: 'header', text: plain(`${emoji} ${finding.title}`, HEADER_MAX) },
    { type: 'section', text: mrkdwn(escapeMrkdwn(finding.summary), SECTION_TEXT_MAX) },
    {
      type: 'section',
      fields: [
        mrkdwn(`*Severity*\n${emoji} ${finding.severity}`, FIELD_MAX),
        mrkdwn(`*Rule*\n${code(finding.rule)}`, FIELD_MAX),
        mrkdwn(`*Identity*\n${identityText(finding)}`, FIELD_MAX),
        mrkdwn(`*Source IP*\n${finding.sourceIP ? code(finding.sourceIP) : '_unknown_'}`, FIELD_MAX),
        mrkdwn(`*Cluster*\n${code(finding.cluster)}`, FIELD_MAX),
        mrkdwn(`*When (${options.timezone})*\n${when}`, FIELD_MAX),
      ],
    },
    {
      type: 'section',
      text: mrkdwn(`*Objects* (${finding.verbs.join(', ')})\n${objectsText(finding)}`, SECTION_TEXT_MAX),
    },
    {
      type: 'context',
      elements: [
        mrkdwn(
          [
            finding.mitre.length > 0 ? `MITRE ATT&amp;CK ${finding.mitre.join(', ')}` : undefined,
            `${finding.count} request${finding.count === 1 ? '' : 's'}`,
            finding.userAgent ? `user agent ${code(finding.userAgent)}` : undefined,
            `finding ${code(finding.id)}`,
          ]
            .filter((part) => part !== undefined)
            .join(' · '),
          FIELD_MAX,
        ),
      ],
    },
    ...kibanaButton(options, [finding.id], finding.firstSeen, finding.lastSeen),
  ];
  return { text: fallback, attachments: [{ color, fallback, blocks }] };
}

export function buildDigestMessage(digest: Digest, options: SlackMessageOptions): SlackMessage {
  const { color, emoji } = SEVERITY_STYLE[digest.maxSeverity];
  const title = `:repeat: and ${digest.count} more like this: ${digest.identity}`;
  const rules = Object.entries(digest.rules)
    .map(([rule, n]) => `${code(rule)} ×${n}`)
    .join(', ');
  const window = formatTimeRange(digest.windowStart, digest.windowEnd, options.timezone);
  const updates = (digest.updates ?? [])
    .slice(0, 5)
    .map((u) => `${code(u.rule)} now ${u.count} request${u.count === 1 ? '' : 's'}`)
    .join(', ');
  const updatedText = digest.updated
    ? ` ${digest.updated} finding${digest.updated === 1 ? '' : 's'} alerted before got more evidence since: ${updates}.`
    : '';
  const text =
    `Route ${code(digest.route)} delivers at most ${digest.maxAlerts} alert${digest.maxAlerts === 1 ? '' : 's'} ` +
    `per identity per window; ${digest.count} more for ${code(digest.identity)} in cluster ${code(digest.cluster)} ` +
    `were folded into this message.${updatedText}`;
  const fallback = `and ${digest.count} more like this for ${digest.identity} (${digest.cluster})`;
  const blocks: Block[] = [
    { type: 'header', text: plain(title, HEADER_MAX) },
    { type: 'section', text: mrkdwn(text, SECTION_TEXT_MAX) },
    {
      type: 'section',
      fields: [
        mrkdwn(`*Highest severity*\n${emoji} ${digest.maxSeverity}`, FIELD_MAX),
        mrkdwn(`*Rules*\n${rules}`, FIELD_MAX),
        mrkdwn(`*Window (${options.timezone})*\n${window}`, FIELD_MAX),
        mrkdwn(`*Example*\n${escapeMrkdwn(digest.sample.title)}`, FIELD_MAX),
      ],
    },
    ...kibanaButton(options, digest.findingIds, digest.firstSeen, digest.lastSeen),
  ];
  return { text: fallback, attachments: [{ color, fallback, blocks }] };
}

export function buildSlackMessage(alert: Alert, options: SlackMessageOptions): SlackMessage {
  return alert.kind === 'finding'
    ? buildFindingMessage(alert.finding, options)
    : buildDigestMessage(alert.digest, options);
}

import type { Alert } from './alert';

export interface HecOptions {
  index?: string;
  source?: string;
  sourcetype?: string;
}

/** One event for Splunk's HTTP Event Collector `/services/collector/event` endpoint. */
export interface HecEvent {
  /** Epoch seconds (with milliseconds): the finding's event time, not when we sent it. */
  time: number;
  host: string;
  source: string;
  sourcetype: string;
  index?: string;
  event: unknown;
  /** Indexed fields, so searches can filter without parsing the event. Values must be strings. */
  fields: Record<string, string | string[]>;
}

export function buildHecEvent(alert: Alert, options: HecOptions = {}): HecEvent {
  const source = options.source ?? 'kaudit';
  if (alert.kind === 'finding') {
    const f = alert.finding;
    return {
      time: Date.parse(f.firstSeen) / 1000,
      host: f.cluster,
      source,
      sourcetype: options.sourcetype ?? 'kaudit:finding',
      ...(options.index ? { index: options.index } : {}),
      event: f,
      fields: {
        kaudit_rule: f.rule,
        kaudit_severity: f.severity,
        kaudit_cluster: f.cluster,
        kaudit_identity: f.identity.username,
        kaudit_finding_id: f.id,
        ...(f.mitre.length > 0 ? { kaudit_mitre: f.mitre } : {}),
      },
    };
  }
  const d = alert.digest;
  return {
    time: Date.parse(d.firstSeen) / 1000,
    host: d.cluster,
    source,
    // A digest is not a finding: its own sourcetype keeps finding searches and counts exact.
    sourcetype: `${options.sourcetype ?? 'kaudit:finding'}:digest`,
    ...(options.index ? { index: options.index } : {}),
    event: d,
    fields: {
      kaudit_severity: d.maxSeverity,
      kaudit_cluster: d.cluster,
      kaudit_identity: d.identity,
      kaudit_digest_id: d.id,
    },
  };
}

/** The HTTP Authorization header value HEC expects. */
export function hecAuthorization(token: string): string {
  return `Splunk ${token}`;
}

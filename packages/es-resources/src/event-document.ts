import { createHash } from 'node:crypto';
import { type AuditEvent, type Envelope, REDACTED_ANNOTATION } from '@kaudit/audit-schema';
import { canonicalJson } from './canonical-json';
import { compact, ECS_VERSION, type EsDocument, isIpAddress, unique } from './ecs';
import { DATASETS, eventsNamespace } from './names';
import { fitsObjectMapping } from './object-fields';

export interface DocumentOptions {
  /**
   * ES_DATA_STREAM_NAMESPACE of the stream the document is written to; sets data_stream.* when given
   * (for events, the stream's own namespace: eventsNamespace, e.g. `kaudit`).
   */
  namespace?: string;
}

/**
 * The document id of an audit event: a hash of its whole content and its cluster. auditID alone
 * would not do: the API server copies it from a client-settable header, so a forged duplicate
 * could hide or overwrite another event. With `create`, a re-delivered event is a 409, not a copy.
 */
export function eventDocumentId(cluster: string, event: AuditEvent): string {
  return createHash('sha256').update(cluster).update('\n').update(canonicalJson(event)).digest('base64url');
}

/**
 * An envelope from the events topic as an ECS document, aligned with Elastic's kubernetes.audit_logs
 * integration: the event itself under kubernetes.audit (annotations dedotted the way that
 * integration does, `authorization.k8s.io/decision` -> `authorization_k8s_io/decision`), plus the
 * ECS fields analysts and prebuilt rules filter on. Pure.
 */
export function toEventDocument(envelope: Envelope, options: DocumentOptions = {}): EsDocument {
  const { cluster, event } = envelope;
  const sourceIPs = event.sourceIPs ?? [];
  // Only the last address was seen by the API server itself; earlier ones come from headers a
  // client controls. An unparsable last address yields no source.ip rather than a guess.
  const trusted = sourceIPs.at(-1);
  const sourceIp = isIpAddress(trusted) ? trusted : undefined;
  const at = new Date(event.requestReceivedTimestamp);
  const ecs = compact({
    '@timestamp': event.requestReceivedTimestamp,
    data_stream: options.namespace
      ? { type: 'logs', dataset: DATASETS.events, namespace: eventsNamespace(options.namespace) }
      : undefined,
    ecs: { version: ECS_VERSION },
    event: {
      kind: 'event',
      category: ['api'],
      type: [eventType(event.verb)],
      action: event.verb,
      outcome: eventOutcome(event),
      // The integration's dataset, like data_stream.dataset: Elastic's prebuilt rules filter on either.
      dataset: DATASETS.events,
      module: 'kubernetes',
      created: envelope.receivedAt,
      // The prebuilt rules' timestamp_override: when the pipeline took the event in (the sink's
      // receipt), not the indexer's wall clock, so the document stays a pure function of the envelope.
      ingested: envelope.receivedAt,
      start: event.requestReceivedTimestamp,
      end: event.stageTimestamp,
    },
    user: {
      name: event.user.username,
      id: event.user.uid,
      effective: event.impersonatedUser
        ? { name: event.impersonatedUser.username, id: event.impersonatedUser.uid }
        : undefined,
    },
    source: { ip: sourceIp },
    client: { ip: sourceIp },
    related: {
      ip: unique(sourceIPs.filter(isIpAddress)),
      user: unique([event.user.username, event.impersonatedUser?.username]),
    },
    user_agent: { original: event.userAgent },
    orchestrator: {
      type: 'kubernetes',
      cluster: { name: cluster },
      namespace: event.objectRef?.namespace,
      api_version: event.objectRef?.apiVersion,
      resource: { type: event.objectRef?.resource, name: event.objectRef?.name },
    },
    http: { response: { status_code: event.responseStatus?.code } },
    kaudit: {
      cluster,
      received_at: envelope.receivedAt,
      redacted_paths: event.annotations?.[REDACTED_ANNOTATION]?.split(',').map((path) => path.trim()),
      // Event time in UTC, for "by hour of week" views without a runtime field.
      time: Number.isNaN(at.getTime())
        ? undefined
        : { weekday: ((at.getUTCDay() + 6) % 7) + 1, hour: at.getUTCHours() },
    },
  }) as Record<string, unknown> & { kaudit: Record<string, unknown> };
  // Attached after compact(): evidence is stored exactly as received, empty objects included.
  const unfit = bodyFields.filter((field) => !fitsObjectMapping(event[field]));
  if (unfit.length > 0)
    ecs.kaudit.unindexed = Object.fromEntries(unfit.map((field) => [field, event[field]]));
  return {
    _id: eventDocumentId(cluster, event),
    doc: { ...ecs, kubernetes: { audit: auditFields(event, unfit) } },
  };
}

function eventType(verb: string): string {
  switch (verb) {
    case 'get':
    case 'list':
    case 'watch':
      return 'access';
    case 'create':
      return 'creation';
    case 'update':
    case 'patch':
      return 'change';
    case 'delete':
    case 'deletecollection':
      return 'deletion';
    default:
      return 'info';
  }
}

/** The authorizer's decision when logged (as the integration does), else the response code. */
function eventOutcome(event: AuditEvent): 'success' | 'failure' | 'unknown' {
  const decision = event.annotations?.['authorization.k8s.io/decision'];
  if (decision === 'allow') return 'success';
  if (decision === 'forbid') return 'failure';
  const code = event.responseStatus?.code;
  if (code === undefined || code === 0) return 'unknown';
  return code < 400 ? 'success' : 'failure';
}

const bodyFields = ['requestObject', 'responseObject'] as const;

/**
 * The event under kubernetes.audit, less the bodies that would conflict with the mapped sub-fields
 * (`unfit`: kept whole but unindexed, under kaudit.unindexed).
 */
function auditFields(event: AuditEvent, unfit: readonly string[]): Record<string, unknown> {
  const audit: Record<string, unknown> = { ...event };
  if (event.annotations) {
    audit.annotations = Object.fromEntries(
      Object.entries(event.annotations).map(([key, value]) => [key.replaceAll('.', '_'), value]),
    );
  }
  for (const field of unfit) delete audit[field];
  return audit;
}

import { z } from 'zod';

/**
 * audit.k8s.io/v1 Event, as kube-apiserver's log and webhook backends write it.
 * Strict on what the detector and indexer rely on (identity, verb, stage, timestamps, objectRef),
 * tolerant of everything else: unknown fields pass through untouched (`z.looseObject`), because
 * API servers of newer versions add fields and we must not drop their events.
 */

// RFC 3339 with any fractional precision; the API server writes microseconds and `Z`.
const timestamp = z.iso.datetime({ offset: true, message: 'must be an RFC 3339 timestamp' });

export const auditLevels = ['None', 'Metadata', 'Request', 'RequestResponse'] as const;
export const auditStages = ['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic'] as const;

export const UserInfoSchema = z.looseObject({
  username: z.string({ message: 'user.username is required' }),
  uid: z.string().optional(),
  groups: z.array(z.string()).optional(),
  extra: z.record(z.string(), z.array(z.string())).optional(),
});
export type UserInfo = z.infer<typeof UserInfoSchema>;

export const ObjectReferenceSchema = z.looseObject({
  resource: z.string().optional(),
  namespace: z.string().optional(),
  name: z.string().optional(),
  uid: z.string().optional(),
  apiGroup: z.string().optional(),
  apiVersion: z.string().optional(),
  resourceVersion: z.string().optional(),
  subresource: z.string().optional(),
});
export type ObjectReference = z.infer<typeof ObjectReferenceSchema>;

export const ResponseStatusSchema = z.looseObject({
  code: z.number().int().optional(),
  status: z.string().optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
});

export const AuditEventSchema = z.looseObject({
  kind: z.literal('Event').optional(),
  apiVersion: z.literal('audit.k8s.io/v1').optional(),
  level: z.enum(auditLevels),
  auditID: z.string().min(1, 'auditID must not be empty'),
  stage: z.enum(auditStages),
  requestURI: z.string(),
  verb: z.string().min(1, 'verb must not be empty'),
  user: UserInfoSchema,
  impersonatedUser: UserInfoSchema.optional(),
  sourceIPs: z.array(z.string()).optional(),
  userAgent: z.string().optional(),
  objectRef: ObjectReferenceSchema.optional(),
  responseStatus: ResponseStatusSchema.optional(),
  requestObject: z.unknown().optional(),
  responseObject: z.unknown().optional(),
  requestReceivedTimestamp: timestamp,
  stageTimestamp: timestamp,
  annotations: z.record(z.string(), z.string()).optional(),
});
export type AuditEvent = z.infer<typeof AuditEventSchema>;

export const EventListSchema = z.looseObject({
  kind: z.literal('EventList'),
  apiVersion: z.literal('audit.k8s.io/v1').optional(),
  // Items are validated one by one (parseAuditEvent) so one bad item never rejects the batch.
  items: z.array(z.unknown(), { message: 'EventList.items must be an array' }),
});

export type ParseResult = { ok: true; event: AuditEvent } | { ok: false; reason: string };

/**
 * Formats zod issues as `path: message; path: message` — what an operator reads about a configuration
 * file. For input (audit events, envelopes) use formatInputIssues: it never quotes the input.
 */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/** Every field name the audit schemas declare: the only path segments an input error may name. */
export const AUDIT_FIELD_NAMES: ReadonlySet<string> = new Set([
  ...Object.keys(AuditEventSchema.shape),
  ...Object.keys(UserInfoSchema.shape),
  ...Object.keys(ObjectReferenceSchema.shape),
  ...Object.keys(ResponseStatusSchema.shape),
  'items',
  'cluster',
  'receivedAt',
  'event',
  'copy',
]);

/**
 * Like formatIssues, but safe to send back to a client and to write to a log or a dead letter: a path
 * segment that is not a declared field name (a record key such as an annotation's, which the sender
 * chose and which can be a secret) is written `*`, and messages are the schema's own, never the input.
 */
export function formatInputIssues(error: z.ZodError, known: ReadonlySet<string> = AUDIT_FIELD_NAMES): string {
  const issues = error.issues.slice(0, 20).map((issue) => {
    const path = issue.path.map((segment) =>
      typeof segment === 'number'
        ? String(segment)
        : typeof segment === 'string' && known.has(segment)
          ? segment
          : '*',
    );
    return `${path.length > 0 ? path.join('.') : '(root)'}: ${safeIssueMessage(issue)}`;
  });
  if (error.issues.length > 20) issues.push(`and ${error.issues.length - 20} more problems`);
  return issues.join('; ');
}

function safeIssueMessage(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'unrecognized_keys':
      return `${issue.keys.length} unrecognized key(s)`;
    case 'invalid_union':
      return 'matches none of the allowed shapes';
    case 'invalid_key':
      return 'has a key of the wrong type';
    case 'invalid_element':
      return 'has an element of the wrong type';
    case 'invalid_value':
      // Our literal and enum messages, or zod's: they list the schema's values, not the input's.
      return issue.message;
    default:
      // too_small, too_big, invalid_format, not_multiple_of, custom: messages from the schema.
      return issue.message;
  }
}

/**
 * Validates one raw item as an audit.k8s.io/v1 Event. Older `audit.k8s.io/v1beta1` events (still found
 * in archived logs that incident responders replay) are upgraded first: their `timestamp` becomes
 * `requestReceivedTimestamp`/`stageTimestamp` and the apiVersion becomes v1.
 */
export function parseAuditEvent(raw: unknown): ParseResult {
  if (isAuditEvent(raw)) return { ok: true, event: raw };
  const result = AuditEventSchema.safeParse(upgradeV1beta1(raw));
  return result.success
    ? { ok: true, event: result.data }
    : { ok: false, reason: formatInputIssues(result.error) };
}

function upgradeV1beta1(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const event = raw as Record<string, unknown>;
  if (event.apiVersion !== 'audit.k8s.io/v1beta1') return raw;
  const metadata = event.metadata as { creationTimestamp?: unknown } | undefined;
  const received = event.requestReceivedTimestamp ?? event.timestamp ?? metadata?.creationTimestamp;
  const { timestamp: _timestamp, metadata: _metadata, ...rest } = event;
  return {
    ...rest,
    apiVersion: 'audit.k8s.io/v1',
    requestReceivedTimestamp: received,
    stageTimestamp: event.stageTimestamp ?? received,
  };
}

// The schema's own pattern for z.iso.datetime({ offset: true }), so the two cannot disagree on a timestamp.
const DATETIME = z.regexes.datetime({ offset: true });
const LEVELS: ReadonlySet<unknown> = new Set(auditLevels);
const STAGES: ReadonlySet<unknown> = new Set(auditStages);

type Json = Record<string, unknown>;

export const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const optionalString = (value: unknown) => value === undefined || typeof value === 'string';
export const isTimestamp = (value: unknown) => typeof value === 'string' && DATETIME.test(value);

function isStringArray(value: unknown): boolean {
  if (!Array.isArray(value)) return false;
  for (const item of value) if (typeof item !== 'string') return false;
  return true;
}

function isUserInfo(value: unknown): boolean {
  if (!isObject(value)) return false;
  if (typeof value.username !== 'string' || !optionalString(value.uid)) return false;
  if (value.groups !== undefined && !isStringArray(value.groups)) return false;
  if (value.extra !== undefined) {
    if (!isObject(value.extra)) return false;
    for (const key in value.extra) if (!isStringArray(value.extra[key])) return false;
  }
  return true;
}

const OBJECT_REFERENCE_FIELDS = [
  'resource',
  'namespace',
  'name',
  'uid',
  'apiGroup',
  'apiVersion',
  'resourceVersion',
  'subresource',
] as const;

function isObjectReference(value: unknown): boolean {
  if (!isObject(value)) return false;
  for (const field of OBJECT_REFERENCE_FIELDS) if (!optionalString(value[field])) return false;
  return true;
}

function isResponseStatus(value: unknown): boolean {
  if (!isObject(value)) return false;
  if (value.code !== undefined && !Number.isSafeInteger(value.code)) return false;
  return optionalString(value.status) && optionalString(value.reason) && optionalString(value.message);
}

/**
 * A value AuditEventSchema accepts as it is (false: let the schema decide): never more lenient than the
 * schema, which returns such a value unchanged (the event is a loose object). The full schema costs
 * more than the detection engine per event, so decodeEnvelope and parseAuditEvent run this first.
 */
export function isAuditEvent(event: unknown): event is AuditEvent {
  if (!isObject(event)) return false;
  if (event.kind !== undefined && event.kind !== 'Event') return false;
  if (event.apiVersion !== undefined && event.apiVersion !== 'audit.k8s.io/v1') return false;
  if (!LEVELS.has(event.level) || !STAGES.has(event.stage)) return false;
  if (typeof event.auditID !== 'string' || event.auditID.length === 0) return false;
  if (typeof event.verb !== 'string' || event.verb.length === 0) return false;
  if (typeof event.requestURI !== 'string' || !optionalString(event.userAgent)) return false;
  if (!isUserInfo(event.user)) return false;
  if (event.impersonatedUser !== undefined && !isUserInfo(event.impersonatedUser)) return false;
  if (event.sourceIPs !== undefined && !isStringArray(event.sourceIPs)) return false;
  if (event.objectRef !== undefined && !isObjectReference(event.objectRef)) return false;
  if (event.responseStatus !== undefined && !isResponseStatus(event.responseStatus)) return false;
  if (!isTimestamp(event.requestReceivedTimestamp) || !isTimestamp(event.stageTimestamp)) return false;
  if (event.annotations !== undefined) {
    if (!isObject(event.annotations)) return false;
    for (const key in event.annotations) if (typeof event.annotations[key] !== 'string') return false;
  }
  return true;
}

import { gzipSync } from 'node:zlib';
import { sourceFixture } from '@kaudit/testkit';
import { parseAuditEvent } from './audit-event';
import { cloudWatchPayloadItems, eksClusterFromLogGroup, stripExportTimestamp } from './cloudwatch';
import { type DecodedItem, decodeAuditText, decodeJsonLines } from './decode';
import { aksClusterFromResourceId, unwrapEventHubRecord } from './event-hubs';
import { firehoseRecordItems, firehoseResponse, parseFirehoseRequest } from './firehose';
import {
  convertGkeLogEntry,
  INFERRED_ANNOTATION,
  parseGkeResourceName,
  UNKNOWN_ANNOTATION,
} from './gke-log-entry';
import { parsePubSubPush } from './pubsub';

const text = (name: string) => sourceFixture(name).toString('utf8');
const summary = (items: DecodedItem[]) =>
  items.map((item) =>
    item.ok
      ? { ok: true, valid: parseAuditEvent(item.raw).ok, cluster: item.cluster }
      : { ok: false, truncated: item.reason.includes('[Truncated...]'), cluster: item.cluster },
  );
const EKS_BATCH = [
  { ok: true, valid: true, cluster: 'prod-eks-1' },
  { ok: true, valid: true, cluster: 'prod-eks-1' },
  { ok: false, truncated: true, cluster: 'prod-eks-1' },
  { ok: true, valid: true, cluster: 'prod-eks-1' },
];

describe('audit-schema > sources > files', () => {
  it.each([
    ['eks-subscription-payload.json', EKS_BATCH],
    ['eks-subscription-payload.b64', EKS_BATCH],
    ['eks-export.txt', EKS_BATCH.map(({ cluster: _c, ...rest }) => ({ ...rest, cluster: undefined }))],
    [
      'eks-filter-log-events.json',
      EKS_BATCH.map(({ cluster: _c, ...rest }) => ({ ...rest, cluster: undefined })),
    ],
    ['eks-control-message.json', []],
    ['gke-logging-read.json', Array(4).fill({ ok: true, valid: true, cluster: 'prod-gke-1' })],
    ['gke-log-entries.jsonl', Array(4).fill({ ok: true, valid: true, cluster: 'prod-gke-1' })],
    ['aks-event-hubs.json', Array(3).fill({ ok: true, valid: true, cluster: 'prod-aks-1' })],
    ['aks-records.jsonl', Array(3).fill({ ok: true, valid: true, cluster: 'prod-aks-1' })],
  ])('%s decodes to its events, with the cluster the input names', (file, expected) => {
    expect(summary(decodeAuditText(text(file)))).toEqual(expected);
  });

  it('a truncated event is dead-lettered with a reason that quotes none of its text', () => {
    const [, , truncated] = decodeAuditText(text('eks-subscription-payload.json'));
    expect(truncated).toMatchObject({ ok: false });
    expect(truncated && !truncated.ok && truncated.reason).toMatch(/truncated by CloudWatch Logs/);
    expect(JSON.stringify(truncated)).not.toContain('configmaps');
  });

  it('a corrupt gzip+base64 line is an error with its line number, and the next line still decodes', () => {
    const items = decodeJsonLines(`H4sIAAAAbroken\n${text('gke-log-entries.jsonl').split('\n')[0]}`);
    expect(items[0]).toMatchObject({ ok: false, line: 1 });
    expect(items[1]).toMatchObject({ ok: true, cluster: 'prod-gke-1' });
  });

  it('export lines lose only their timestamp prefix', () => {
    expect(stripExportTimestamp('2026-11-30T09:15:02.101Z {"a":1}')).toBe('{"a":1}');
    expect(stripExportTimestamp('{"a":1}')).toBeUndefined();
  });
});

describe('audit-schema > sources > cluster names', () => {
  it.each([
    ['/aws/eks/prod-eks-1/cluster', 'prod-eks-1'],
    ['/aws/eks/prod/other', undefined],
    ['/aws/lambda/x', undefined],
  ])('log group %s -> %s', (group, cluster) => expect(eksClusterFromLogGroup(group)).toBe(cluster));
  it.each([
    [
      '/SUBSCRIPTIONS/1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-01',
      'aks-01',
    ],
    ['/subscriptions/1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x', undefined],
  ])('resourceId %s -> %s', (id, cluster) => expect(aksClusterFromResourceId(id)).toBe(cluster));
  it('an Event Hubs record whose log is not JSON is an error naming the field, not the content', () => {
    const result = unwrapEventHubRecord({ properties: { log: '{"password":"MKsecret123' } });
    expect(result).toMatchObject({ ok: false });
    expect(JSON.stringify(result)).not.toContain('MKsecret123');
  });
});

describe('audit-schema > sources > firehose', () => {
  const payload = sourceFixture('eks-subscription-payload.json');
  const request = {
    requestId: 'ed4acda5-034f-9f42-bba1-f29aea6d7d8f',
    timestamp: 1764494103000,
    records: [
      { data: gzipSync(payload).toString('base64') },
      { data: gzipSync(sourceFixture('eks-control-message.json')).toString('base64') },
    ],
  };
  it('parses the request and decodes each record, control messages to nothing', () => {
    const parsed = parseFirehoseRequest(request);
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(parsed.request.requestId).toBe(request.requestId);
    expect(summary(firehoseRecordItems(parsed.request.records[0]!, 1))).toEqual(EKS_BATCH);
    expect(firehoseRecordItems(parsed.request.records[1]!, 2)).toEqual([]);
  });
  it('takes records Firehose already decompressed, and extracted messages one per line', () => {
    expect(summary(firehoseRecordItems(payload, 1))).toEqual(EKS_BATCH);
    const messages = JSON.parse(payload.toString()).logEvents.map((e: { message: string }) => e.message);
    expect(summary(firehoseRecordItems(Buffer.from(messages.join('\n')), 1)).map((s) => s.ok)).toEqual([
      true,
      true,
      false,
      true,
    ]);
  });
  it.each([
    [null, 'body must be a Firehose request object'],
    [{ timestamp: 1, records: [] }, 'requestId must be a non-empty string'],
    [{ requestId: 'r', records: [] }, 'timestamp must be a number'],
    [{ requestId: 'r', timestamp: 1, records: [{ data: 1 }] }, 'records.0.data must be a base64 string'],
  ])('refuses %j: %s', (body, reason) => {
    expect(parseFirehoseRequest(body)).toMatchObject({ ok: false, reason });
  });
  it('answers in the format Firehose requires', () => {
    expect(firehoseResponse('r', 5)).toEqual({ requestId: 'r', timestamp: 5 });
    expect(firehoseResponse('r', 5, 'x')).toEqual({ requestId: 'r', timestamp: 5, errorMessage: 'x' });
  });
  it('a payload that is neither data nor control is one error', () => {
    expect(cloudWatchPayloadItems({ messageType: 'OTHER', logEvents: [] }, 1)).toMatchObject([{ ok: false }]);
  });
});

describe('audit-schema > sources > gke', () => {
  const entries = JSON.parse(text('gke-logging-read.json')) as unknown[];
  it('converts a secrets.get LogEntry into the Event it describes, inferred fields named', () => {
    const converted = convertGkeLogEntry(entries[0]);
    if (!converted.ok) throw new Error(converted.reason);
    expect(converted.cluster).toBe('prod-gke-1');
    expect(converted.event).toMatchObject({
      verb: 'get',
      user: { username: 'alice@example.com' },
      sourceIPs: ['203.0.113.7'],
      userAgent: 'kubectl/v1.31.0 (darwin/arm64) kubernetes/abcdef0',
      objectRef: {
        apiGroup: '',
        apiVersion: 'v1',
        namespace: 'payments',
        resource: 'secrets',
        name: 'db-password',
      },
      requestURI: '/api/v1/namespaces/payments/secrets/db-password',
      responseStatus: { code: 200 },
      stage: 'ResponseComplete',
      level: 'RequestResponse',
      requestReceivedTimestamp: '2026-11-30T10:00:00.123456Z',
      auditID: 'gke-0001',
    });
    const annotations = (converted.event.annotations ?? {}) as Record<string, string>;
    expect(annotations[INFERRED_ANNOTATION]?.split(',')).toEqual(
      expect.arrayContaining(['stage', 'level', 'requestURI', 'responseStatus.code']),
    );
    expect(annotations[UNKNOWN_ANNOTATION]).toBe('user.groups');
    expect(annotations['authorization.k8s.io/decision']).toBe('allow');
    expect((converted.event.user as { groups?: unknown }).groups).toBeUndefined();
    expect(parseAuditEvent(converted.event).ok).toBe(true);
  });
  it('maps subresources, API groups and a refused request', () => {
    const exec = convertGkeLogEntry(entries[2]);
    const crb = convertGkeLogEntry(entries[3]);
    expect(exec).toMatchObject({
      ok: true,
      event: {
        verb: 'create',
        objectRef: { resource: 'pods', name: 'api-5d8f', subresource: 'exec' },
        responseStatus: { code: 403, message: 'Forbidden', status: 'Failure' },
        level: 'Metadata',
      },
    });
    expect(crb).toMatchObject({
      ok: true,
      event: {
        requestURI: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/ops-admin',
        objectRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          resource: 'clusterrolebindings',
          name: 'ops-admin',
        },
      },
    });
  });
  it.each([
    [
      { protoPayload: { methodName: 'google.container.v1.ClusterManager.GetCluster' } },
      /not a Kubernetes method/,
    ],
    [{ ...(entries[0] as object), timestamp: undefined }, /timestamp is missing/],
    [
      { ...(entries[0] as object), protoPayload: { methodName: 'io.k8s.core.v1.pods.get' } },
      /principalEmail/,
    ],
  ])('refuses an entry it cannot convert (%#)', (entry, reason) => {
    const converted = convertGkeLogEntry(entry);
    expect(converted.ok).toBe(false);
    expect(!converted.ok && converted.reason).toMatch(reason);
  });
  it('parses resource names with and without namespaces', () => {
    expect(parseGkeResourceName('core/v1/namespaces/kube-system')).toEqual({
      apiGroup: '',
      apiVersion: 'v1',
      resource: 'namespaces',
      name: 'kube-system',
    });
    expect(parseGkeResourceName('nodes')).toBeUndefined();
  });
});

describe('audit-schema > sources > pubsub', () => {
  it('parses a push envelope', () => {
    const data = sourceFixture('gke-log-entries.jsonl').toString().split('\n')[0]!;
    const parsed = parsePubSubPush({
      message: {
        data: Buffer.from(data).toString('base64'),
        attributes: { 'logging.googleapis.com/timestamp': 'x' },
        messageId: '42',
      },
      subscription: 'projects/example-project/subscriptions/kaudit',
    });
    expect(parsed).toMatchObject({
      ok: true,
      push: { messageId: '42', subscription: 'projects/example-project/subscriptions/kaudit' },
    });
    expect(parsed.ok && parsed.push.data.toString()).toBe(data);
  });
  it.each([
    [{}, 'message must be an object'],
    [{ message: { data: 'e30=' } }, 'message.messageId must be a non-empty string'],
    [{ message: { messageId: '1' } }, 'message.data must be a base64 string'],
  ])('refuses %j', (body, reason) => expect(parsePubSubPush(body)).toEqual({ ok: false, reason }));
});

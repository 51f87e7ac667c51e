import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeAuditText, effectiveUsername, parseAuditEvent, partitionKey } from './index';

const samples = join(__dirname, '../../../../shared/audit-samples');
const read = (path: string) => readFileSync(join(samples, path), 'utf8');

function decodeAndParse(path: string) {
  const items = decodeAuditText(read(path));
  const events = items.flatMap((item) => (item.ok ? [parseAuditEvent(item.raw)] : []));
  return { items, events, valid: events.filter((e) => e.ok), invalid: events.filter((e) => !e.ok) };
}

describe('audit-schema > real samples', () => {
  it.each([
    ['openshift/ocp-4.12-audit.jsonl', 100],
    ['audit2rbac/demo-v1beta1.jsonl', 757],
    ['aks/eventhub-batch.json', 22],
    ['aks/single-event-bom.json', 1],
    ['minikube/pod-exec.jsonl', undefined],
    ['minikube/privileged-pod.jsonl', undefined],
    ['openshift/raw-kubernetes-event.json', 1],
    ['openshift/raw-oauth-apiserver-event.json', 1],
    ['openshift/raw-openshift-event.json', 1],
    ['openshift/rosa-lease-update.json', 1],
  ])('accepts every event of %s', (path, expected) => {
    const { items, valid, invalid } = decodeAndParse(path);
    expect(items.every((item) => item.ok)).toBe(true);
    expect(invalid).toEqual([]);
    if (expected !== undefined) expect(valid).toHaveLength(expected);
    else expect(valid.length).toBeGreaterThan(0);
  });

  it('accepts every falco secret sample', () => {
    for (const file of readdirSync(join(samples, 'falco-secrets'))) {
      const { valid, invalid } = decodeAndParse(`falco-secrets/${file}`);
      expect({ file, invalid }).toEqual({ file, invalid: [] });
      expect(valid.length).toBeGreaterThan(0);
    }
  });

  it('reports the bad line of a JSON-lines file and keeps the other 101', () => {
    const { items, valid } = decodeAndParse('openshift/ocp-aws-2024-audit-with-bad-line.jsonl');
    const bad = items.filter((item) => !item.ok);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ ok: false, line: 2 });
    expect(bad[0]!.ok ? '' : bad[0]!.reason).toMatch(/^line 2: not valid JSON/);
    expect(valid).toHaveLength(101);
  });

  it('upgrades v1beta1 events: timestamp becomes requestReceivedTimestamp', () => {
    const { valid } = decodeAndParse('audit2rbac/demo-v1beta1.jsonl');
    const first = valid[0]!;
    expect(first.ok && first.event.requestReceivedTimestamp).toBe('2017-09-11T19:55:05Z');
    expect(first.ok && first.event.apiVersion).toBe('audit.k8s.io/v1');
  });
});

describe('audit-schema > validation', () => {
  const base = {
    level: 'Metadata',
    auditID: 'a1',
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/default/secrets/db',
    verb: 'get',
    user: { username: 'alice' },
    requestReceivedTimestamp: '2026-01-05T10:00:00.000000Z',
    stageTimestamp: '2026-01-05T10:00:00.100000Z',
  };

  it('keeps unknown fields', () => {
    const result = parseAuditEvent({ ...base, futureField: { x: 1 } });
    expect(result.ok && (result.event as Record<string, unknown>).futureField).toEqual({ x: 1 });
  });

  it.each([
    [{ ...base, verb: undefined }, /verb/],
    [{ ...base, user: {} }, /user\.username/],
    [{ ...base, stage: 'Done' }, /stage/],
    [
      { ...base, requestReceivedTimestamp: 'yesterday' },
      /requestReceivedTimestamp: must be an RFC 3339 timestamp/,
    ],
    ['a string', /\(root\)/],
  ])('rejects %j with a reason naming the field', (raw, reason) => {
    const result = parseAuditEvent(raw);
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.reason).toMatch(reason);
  });

  it('keys by cluster and the effective (impersonated) identity', () => {
    const event = { user: { username: 'admin' }, impersonatedUser: { username: 'bob' } };
    expect(effectiveUsername(event)).toBe('bob');
    expect(partitionKey('prod', event)).toBe('prod/bob');
    expect(partitionKey('prod', { user: { username: 'admin' } })).toBe('prod/admin');
  });
});

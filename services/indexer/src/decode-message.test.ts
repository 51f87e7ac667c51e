import { EnvelopeSchema } from '@kaudit/audit-schema';
import { toEventDocument } from '@kaudit/es-resources';
import { buildEvent, loadSampleEvents } from '@kaudit/testkit';
import { bulkLines, chunkByLimits, decodeMessage } from './decode-message';

const streams = { events: 'logs-kubernetes.audit_logs-kaudit_ns', findings: 'logs-kaudit.findings-ns' };
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('indexer > decode message', () => {
  it('turns an envelope into a create for the events data stream', () => {
    const decoded = decodeMessage(
      'events',
      json({ cluster: 'prod', receivedAt: '2026-01-05T10:00:00Z', event: buildEvent() }),
      streams,
      'ns',
    );
    expect(decoded.ok).toBe(true);
    if (decoded.ok !== true) return;
    const [action, doc] = decoded.item.lines
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(action).toEqual({
      create: { _index: 'logs-kubernetes.audit_logs-kaudit_ns', _id: decoded.item.id },
    });
    expect(doc.data_stream).toEqual({
      type: 'logs',
      dataset: 'kubernetes.audit_logs',
      namespace: 'kaudit_ns',
    });
    expect(decoded.item.bytes).toBe(Buffer.byteLength(decoded.item.lines));
    expect(decoded.item.cluster).toBe('prod');
  });

  it.each([
    ['events', null, /tombstone/],
    ['events', Buffer.from('{not json'), /^not valid JSON/],
    ['events', json({ cluster: 'prod', event: {} }), /^not an event envelope: .*receivedAt/],
    ['findings', json({ id: 'f' }), /^not a finding: .*rule/],
  ] as const)('reports a bad %s message with its reason', (kind, value, reason) => {
    const decoded = decodeMessage(kind, value, streams, 'ns');
    expect(decoded.ok).toBe(false);
    expect(decoded.ok === false ? decoded.reason : '').toMatch(reason);
  });

  it('leaves out a chain step’s copy (its original is indexed on its own partition); an unknown copy kind is invalid', () => {
    const envelope = { cluster: 'prod', receivedAt: '2026-01-05T10:00:00Z', event: buildEvent() };
    expect(decodeMessage('events', json({ ...envelope, copy: 'chain-step' }), streams, 'ns')).toEqual({
      ok: 'copy',
    });
    expect(decodeMessage('events', json({ ...envelope, copy: 'other' }), streams, 'ns')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/copy/),
    });
  });

  // The hand-written check in front of the schema must not change what is indexed: the same _id and
  // the same document (the fast path keeps the producer's key order where the schema would reorder).
  const envelopeOf = (event: unknown) => ({
    cluster: 'prod',
    receivedAt: '2026-01-05T10:00:00Z',
    event,
    extra: 1,
  });
  it('indexes the real samples as the schema-parsed envelope', () => {
    const texts = ['openshift/ocp-4.12-audit.jsonl', 'aks/eventhub-batch.json', 'minikube/pod-exec.jsonl']
      .flatMap((file) => loadSampleEvents(file))
      .map((event) => JSON.stringify(envelopeOf(event)));
    expect(texts.length).toBeGreaterThan(10);
    for (const text of texts) {
      const { _id, doc } = toEventDocument(EnvelopeSchema.parse(JSON.parse(text)), { namespace: 'ns' });
      const decoded = decodeMessage('events', Buffer.from(text), streams, 'ns');
      if (decoded.ok !== true) throw new Error(`not decoded: ${JSON.stringify(decoded)}`);
      expect(decoded.item).toMatchObject({ kind: 'events', index: streams.events, id: _id, cluster: 'prod' });
      const parse = (lines: string) =>
        lines
          .trimEnd()
          .split('\n')
          .map((line) => JSON.parse(line));
      expect(parse(decoded.item.lines)).toEqual(parse(bulkLines(streams.events, _id, doc).lines));
      expect(decoded.item.bytes).toBe(Buffer.byteLength(decoded.item.lines));
    }
  });

  it('keeps the cluster of a bad envelope for the dead letter', () => {
    const decoded = decodeMessage('events', json({ cluster: 'prod' }), streams, 'ns');
    expect(decoded).toMatchObject({ ok: false, cluster: 'prod', raw: { cluster: 'prod' } });
  });
});

describe('indexer > chunking', () => {
  const size = (n: number) => n;
  it.each([
    [[1, 1, 1, 1, 1], 2, 100, [[1, 1], [1, 1], [1]]],
    [[40, 40, 40], 10, 100, [[40, 40], [40]]],
    [[500, 1, 1], 10, 100, [[500], [1, 1]]],
    [[1, 500], 10, 100, [[1], [500]]],
    [[], 10, 100, []],
  ])('%j with at most %d docs and %d bytes -> %j', (entries, maxDocs, maxBytes, chunks) => {
    expect([...chunkByLimits(entries, size, maxDocs, maxBytes)]).toEqual(chunks);
  });
});

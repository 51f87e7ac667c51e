import { DeadLetterSchema } from '@kaudit/audit-schema';
import { MAX_DEAD_LETTER_BYTES, serializeDeadLetter } from './dead-letters';

const letter = (raw: unknown) => ({
  source: 'indexer' as const,
  reason: 'Elasticsearch rejected the document (HTTP 400): document_parsing_exception',
  at: '2026-01-05T10:00:00.000Z',
  cluster: 'prod',
  topic: 'k8s-audit.events',
  partition: 0,
  offset: '42',
  target: 'logs-kaudit.audit-default',
  raw,
});

describe('indexer > dead letters', () => {
  it('serialises a letter the DeadLetter schema accepts, raw item intact', () => {
    const text = serializeDeadLetter(letter({ cluster: 'prod', event: { auditID: 'a' } }));
    const parsed = DeadLetterSchema.parse(JSON.parse(text));
    expect(parsed.raw).toEqual({ cluster: 'prod', event: { auditID: 'a' } });
  });

  it('cuts an oversized raw item down to its start so Kafka accepts the letter', () => {
    const huge = '"\\'.repeat(400_000);
    const text = serializeDeadLetter(letter(huge));
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_DEAD_LETTER_BYTES);
    const parsed = DeadLetterSchema.parse(JSON.parse(text));
    expect(parsed.raw).toMatchObject({ truncated: true, originalBytes: 800_000 });
    expect(parsed.reason).toMatch(/document_parsing_exception/);
  });
});

import { DeadLetterSchema } from '@kaudit/audit-schema';
import {
  buildDeadLetter,
  deadLetterMessage,
  MAX_DEAD_LETTER_BYTES,
  serializeDeadLetter,
} from './dead-letter';

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

describe('service-kit > kafka > dead letter', () => {
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

  it('keeps a letter under a smaller cap, the raw start or at least its size', () => {
    const text = serializeDeadLetter(letter('x'.repeat(50_000)), 10_000);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(10_000);
    expect(JSON.parse(text).raw).toMatchObject({ truncated: true, originalBytes: 50_000 });
  });

  it('drops a raw item that cannot be serialized and says why', () => {
    const parsed = JSON.parse(serializeDeadLetter(letter({ n: 1n })));
    expect(parsed.raw).toBeNull();
    expect(parsed.reason).toMatch(/could not be serialized \(TypeError\)$/);
  });

  it('builds letters without undefined fields, keyed by cluster unless told otherwise', () => {
    const built = buildDeadLetter({ source: 'alerter', reason: 'r', at: 0, cluster: undefined, raw: null });
    expect(built).toEqual({ source: 'alerter', reason: 'r', at: '1970-01-01T00:00:00.000Z', raw: null });
    expect(DeadLetterSchema.parse(built)).toEqual(built);
    expect(deadLetterMessage({ ...built, cluster: 'prod' }).key).toBe('prod');
    expect(deadLetterMessage(built, { key: null }).key).toBeNull();
  });
});

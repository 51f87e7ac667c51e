import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@kaudit/service-kit';
import { openSpool, type Spool, type SpoolOptions } from './spool';
import { encodeRecord, HEADER_BYTES, type OutMessage, recordBytes } from './spool-format';

const logger = createLogger({ service: 'sink-test', level: 'silent' });
const message = (n: number, topic = 'k8s-audit.events'): OutMessage => ({
  topic,
  key: n % 3 === 0 ? null : `c/user-${n}`,
  value: JSON.stringify({ n, text: 'ünïcödé ✓' }),
});
const batch = (from: number, count: number) => Array.from({ length: count }, (_, i) => message(from + i));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'sink-spool-'));
}

async function open(dir: string, extra: Partial<SpoolOptions> = {}): Promise<Spool> {
  return openSpool({ dir, maxBytes: 1024 * 1024, logger, ...extra });
}

/** Reads and acknowledges everything, the way the drainer does. */
async function drainAll(spool: Spool, maxBytes = 1000): Promise<OutMessage[]> {
  const out: OutMessage[] = [];
  for (let batch = await spool.read(maxBytes); batch; batch = await spool.read(maxBytes)) {
    out.push(...batch.messages);
    await spool.ack(batch);
  }
  return out;
}

describe('sink > spool', () => {
  it('gives records back in append order, across segments, and frees them on ack', async () => {
    const dir = tempDir();
    const spool = await open(dir, { segmentBytes: 600 });
    for (let i = 0; i < 10; i++) await spool.append(batch(i * 3, 3));
    expect(readdirSync(dir).filter((f) => f.endsWith('.log')).length).toBeGreaterThan(1);
    expect(spool.isEmpty()).toBe(false);
    expect(await drainAll(spool)).toEqual(batch(0, 30));
    expect(spool.isEmpty()).toBe(true);
    expect(spool.usedBytes()).toBe(0);
    // Drained segments are deleted; one fresh, empty segment remains.
    const logs = readdirSync(dir).filter((f) => f.endsWith('.log'));
    expect(logs).toHaveLength(1);
    expect(statSync(join(dir, logs[0]!)).size).toBe(0);
    await spool.close();
  });

  it('re-reads an unacknowledged batch (a failed send is retried, not lost)', async () => {
    const spool = await open(tempDir());
    await spool.append(batch(0, 2));
    const first = await spool.read(1000);
    const again = await spool.read(1000);
    expect(again?.messages).toEqual(first?.messages);
    await spool.close();
  });

  it('survives a restart: what was not acknowledged is still there, what was is not', async () => {
    const dir = tempDir();
    const spool = await open(dir);
    await spool.append(batch(0, 2));
    await spool.append(batch(2, 2));
    const firstRecord = await spool.read(1);
    expect(firstRecord?.records).toBe(1);
    await spool.ack(firstRecord!);
    await spool.append(batch(4, 2));
    await spool.close();

    const reopened = await open(dir);
    expect(await drainAll(reopened)).toEqual(batch(2, 4));
    await reopened.close();
  });

  it.each([
    ['a torn header', (file: string) => appendFileSync(file, Buffer.from([0x4b, 0x41, 0x55]))],
    [
      'a torn payload',
      (file: string) => appendFileSync(file, encodeRecord(batch(100, 5)).subarray(0, HEADER_BYTES + 10)),
    ],
    ['a zero-filled tail', (file: string) => appendFileSync(file, Buffer.alloc(4096))],
    [
      'a record with a bad checksum',
      (file: string) => {
        const record = encodeRecord(batch(100, 1));
        record.writeUInt8(record.readUInt8(record.length - 2) ^ 0xff, record.length - 2);
        appendFileSync(file, record);
      },
    ],
  ])('drops %s at the end after a crash and keeps every record before it', async (_name, tear) => {
    const dir = tempDir();
    const spool = await open(dir);
    await spool.append(batch(0, 3));
    await spool.append(batch(3, 3));
    await spool.close();
    const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.log'))!);
    const goodSize = statSync(file).size;
    tear(file);

    const reopened = await open(dir);
    expect(statSync(file).size).toBe(goodSize);
    await reopened.append(batch(6, 1)); // appends after the cut land on a clean boundary
    expect(await drainAll(reopened)).toEqual(batch(0, 7));
    await reopened.close();
  });

  it('refuses appends beyond maxBytes with a retriable 503 and takes them again once drained', async () => {
    const spool = await open(tempDir(), { maxBytes: 2048 });
    const big = [{ topic: 't', key: null, value: 'x'.repeat(900) }];
    await spool.append(big);
    await spool.append(big);
    await expect(spool.append(big)).rejects.toMatchObject({
      code: 'KAUDIT_ERR_SPOOL',
      statusCode: 503,
      retriable: true,
    });
    expect(spool.usedBytes()).toBeLessThanOrEqual(2048);
    await drainAll(spool);
    await expect(spool.append(big)).resolves.toBeUndefined();
    await spool.close();
  });

  it('counts concurrent appends against the bound before they reach the disk', async () => {
    const spool = await open(tempDir(), { maxBytes: 2048 });
    const big = [{ topic: 't', key: null, value: 'x'.repeat(900) }];
    const results = await Promise.allSettled([spool.append(big), spool.append(big), spool.append(big)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    await spool.close();
  });

  it('keeps its segment files within maxBytes on disk while it drains and takes 50-append bursts', async () => {
    const dir = tempDir();
    const maxBytes = 256 * 1024;
    const spool = await open(dir, { maxBytes });
    const record = [{ topic: 't', key: 'c/u', value: 'x'.repeat(4000) }];
    const onDisk = () =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.log'))
        .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
    let peak = 0;
    const outcomes = { fulfilled: 0, rejected: 0 };
    for (let round = 0; round < 20; round++) {
      const results = await Promise.allSettled(Array.from({ length: 50 }, () => spool.append(record)));
      for (const r of results) outcomes[r.status] += 1;
      peak = Math.max(peak, onDisk());
      expect(spool.diskBytes()).toBe(onDisk());
      // The drainer takes part of it meanwhile: drained bytes stay on disk until their segment goes.
      const drained = await spool.read(40 * 1024);
      if (drained) await spool.ack(drained);
      peak = Math.max(peak, onDisk());
    }
    expect(peak).toBeLessThanOrEqual(maxBytes);
    expect(outcomes.rejected).toBeGreaterThan(0);
    // Space came back as it drained: more went in than fits at once.
    expect(outcomes.fulfilled * encodeRecord(record).length).toBeGreaterThan(2 * maxBytes);
    await spool.close();
  });

  it.each([
    ['no messages', []],
    ['a null key', [{ topic: 't', key: null, value: 'v' }]],
    ['multi-byte text', batch(0, 5)],
  ])('knows what a record of %s takes on disk without encoding it', (_name, messages: OutMessage[]) => {
    expect(recordBytes(messages)).toBe(encodeRecord(messages).length);
  });

  it('reports its size to onBytes', async () => {
    const sizes: number[] = [];
    const spool = await open(tempDir(), { onBytes: (bytes) => sizes.push(bytes) });
    await spool.append(batch(0, 1));
    expect(sizes.at(-1)).toBeGreaterThan(0);
    await drainAll(spool);
    expect(sizes.at(-1)).toBe(0);
    await spool.close();
  });

  it('skips a corrupt record in an older segment, counts it, and goes on with the next segment', async () => {
    const dir = tempDir();
    const corrupt: number[] = [];
    const spool = await open(dir, { segmentBytes: 300 });
    for (let i = 0; i < 4; i++) await spool.append(batch(i * 2, 2));
    await spool.close();
    const logs = readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .sort();
    expect(logs.length).toBeGreaterThan(1);
    const first = join(dir, logs[0]!);
    const bytes = readFileSync(first);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    writeFileSync(first, bytes);

    const reopened = await open(dir, { segmentBytes: 300, onCorrupt: (n) => corrupt.push(n) });
    const drained = await drainAll(reopened);
    expect(corrupt).toHaveLength(1);
    expect(drained.length).toBeGreaterThan(0);
    expect(drained.at(-1)).toEqual(message(7));
    await reopened.close();
  });

  it('starts over from the oldest segment when head.json is unreadable (duplicates, never loss)', async () => {
    const dir = tempDir();
    const spool = await open(dir);
    await spool.append(batch(0, 2));
    await spool.close();
    writeFileSync(join(dir, 'head.json'), '{nope');
    const reopened = await open(dir);
    expect(await drainAll(reopened)).toEqual(batch(0, 2));
    await reopened.close();
  });
});

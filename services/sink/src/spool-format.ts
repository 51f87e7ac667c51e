import { crc32 } from 'node:zlib';

/** A Kafka message as the sink produces it; what a spool record holds a list of. */
export interface OutMessage {
  topic: string;
  key: string | null;
  value: string;
  /**
   * Produced once to every partition of the topic (a chain step's copy: ingest.ts); the key is null.
   * On disk: key length -2.
   */
  everyPartition?: true;
}

/**
 * One spool record on disk: a 12-byte header, then the payload.
 *   magic  u32 BE  'KAUD' — a zero-filled or foreign tail never looks like a record
 *   length u32 BE  payload bytes
 *   crc    u32 BE  CRC-32 of the payload
 * Payload: u32 count, then per message: u16 topic length, topic, i32 key length (-1 = null, -2 = null
 * and produced to every partition: since issue 15; older spools never hold it), key, u32 value length,
 * value (all UTF-8).
 */
export const RECORD_MAGIC = 0x4b415544;
/** The key length that marks a message produced to every partition (OutMessage.everyPartition). */
const EVERY_PARTITION = -2;
export const HEADER_BYTES = 12;
/** Upper bound on one record: anything larger in a header is a torn or foreign write. */
export const MAX_RECORD_BYTES = 1024 * 1024 * 1024;

/** The bytes encodeRecord(messages) takes on disk, header included, without encoding it. */
export function recordBytes(messages: readonly OutMessage[]): number {
  let length = HEADER_BYTES + 4;
  for (const m of messages)
    length +=
      2 +
      Buffer.byteLength(m.topic, 'utf8') +
      4 +
      (m.key === null ? 0 : Buffer.byteLength(m.key, 'utf8')) +
      4 +
      Buffer.byteLength(m.value, 'utf8');
  return length;
}

export function encodeRecord(messages: readonly OutMessage[]): Buffer {
  const parts = messages.map((m) => ({
    topic: Buffer.from(m.topic, 'utf8'),
    everyPartition: m.everyPartition === true,
    key: m.key === null ? null : Buffer.from(m.key, 'utf8'),
    value: Buffer.from(m.value, 'utf8'),
  }));
  let length = 4;
  for (const p of parts) length += 2 + p.topic.length + 4 + (p.key?.length ?? 0) + 4 + p.value.length;
  const out = Buffer.allocUnsafe(HEADER_BYTES + length);
  let at = HEADER_BYTES;
  at = out.writeUInt32BE(parts.length, at);
  for (const p of parts) {
    at = out.writeUInt16BE(p.topic.length, at);
    at += p.topic.copy(out, at);
    at = out.writeInt32BE(p.key === null ? (p.everyPartition ? EVERY_PARTITION : -1) : p.key.length, at);
    if (p.key) at += p.key.copy(out, at);
    at = out.writeUInt32BE(p.value.length, at);
    at += p.value.copy(out, at);
  }
  const payload = out.subarray(HEADER_BYTES);
  out.writeUInt32BE(RECORD_MAGIC, 0);
  out.writeUInt32BE(length, 4);
  out.writeUInt32BE(crc32(payload), 8);
  return out;
}

export type HeaderCheck = { ok: true; length: number; crc: number } | { ok: false; reason: string };

export function readHeader(header: Buffer): HeaderCheck {
  if (header.length < HEADER_BYTES) return { ok: false, reason: 'incomplete header' };
  if (header.readUInt32BE(0) !== RECORD_MAGIC) return { ok: false, reason: 'bad magic' };
  const length = header.readUInt32BE(4);
  if (length < 4 || length > MAX_RECORD_BYTES) return { ok: false, reason: `implausible length ${length}` };
  return { ok: true, length, crc: header.readUInt32BE(8) };
}

/** Decodes a payload whose CRC matched; throws on a malformed one (treated as corrupt by the caller). */
export function decodePayload(payload: Buffer, crc: number): OutMessage[] {
  if (crc32(payload) !== crc) throw new Error('checksum mismatch');
  let at = 0;
  const need = (n: number) => {
    if (at + n > payload.length) throw new Error('payload shorter than its fields');
  };
  need(4);
  const count = payload.readUInt32BE(at);
  at += 4;
  const messages: OutMessage[] = [];
  for (let i = 0; i < count; i++) {
    need(2);
    const topicLength = payload.readUInt16BE(at);
    at += 2;
    need(topicLength + 4);
    const topic = payload.toString('utf8', at, at + topicLength);
    at += topicLength;
    const keyLength = payload.readInt32BE(at);
    at += 4;
    let key: string | null = null;
    if (keyLength >= 0) {
      need(keyLength);
      key = payload.toString('utf8', at, at + keyLength);
      at += keyLength;
    } else if (keyLength !== -1 && keyLength !== EVERY_PARTITION) throw new Error('bad key length');
    need(4);
    const valueLength = payload.readUInt32BE(at);
    at += 4;
    need(valueLength);
    const value = payload.toString('utf8', at, at + valueLength);
    messages.push(
      keyLength === EVERY_PARTITION ? { topic, key, value, everyPartition: true } : { topic, key, value },
    );
    at += valueLength;
  }
  if (at !== payload.length) throw new Error('payload longer than its fields');
  return messages;
}

import { crc32 } from 'node:zlib';
import {
  decodePayload,
  encodeRecord,
  HEADER_BYTES,
  type OutMessage,
  readHeader,
  recordBytes,
} from './spool-format';

const roundTrip = (messages: OutMessage[]) => {
  const record = encodeRecord(messages);
  const header = readHeader(record.subarray(0, HEADER_BYTES));
  if (!header.ok) throw new Error(header.reason);
  return decodePayload(record.subarray(HEADER_BYTES), header.crc);
};

describe('sink > spool format', () => {
  it('keeps a message for every partition (a chain step’s copy) apart from a keyless one', () => {
    const messages: OutMessage[] = [
      { topic: 'events', key: 'prod/alice', value: '{"a":1}' },
      { topic: 'events', key: null, value: '{"copy":"chain-step"}', everyPartition: true },
      { topic: 'dlq', key: null, value: 'ü' },
    ];
    expect(roundTrip(messages)).toEqual(messages);
    expect(recordBytes(messages)).toBe(encodeRecord(messages).length);
  });

  it('reads a record written before the marker existed (key length -1 or a key, nothing else)', () => {
    // u32 count 1; u16 topic 'e'; i32 -1 (null key); u32 value 2 '{}' — the layout of older spools.
    const payload = Buffer.from([0, 0, 0, 1, 0, 1, 0x65, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0x7b, 0x7d]);
    expect(decodePayload(payload, crc32(payload))).toEqual([{ topic: 'e', key: null, value: '{}' }]);
    const foreign = Buffer.from(payload);
    foreign.writeInt32BE(-3, 7);
    expect(() => decodePayload(foreign, crc32(foreign))).toThrow(/bad key length/);
  });
});

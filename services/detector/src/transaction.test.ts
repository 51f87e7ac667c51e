import { createLogger } from '@kaudit/service-kit';
import type { Producer } from 'kafkajs';
import { createDetectorMetrics } from './metrics';
import { chunkBySize, createTransactionCommit, stateChunkBytes } from './transaction';

const topics = { eventsTopic: 'e', alertsTopic: 'a', dlqTopic: 'd', stateTopic: 's' };
const work = { findings: [], deadLetters: [], state: [{ key: 'i:x', value: '{}' }], offsets: [] };

/** A producer whose transactions fail to send and, if `abortFails`, to abort. */
function fakeProducer(name: string, calls: string[], options: { sendFails: boolean; abortFails: boolean }) {
  return {
    transaction: async () => {
      calls.push(`${name}.transaction`);
      return {
        send: async () => {
          calls.push(`${name}.send`);
          if (options.sendFails) throw new Error('connection refused');
        },
        sendOffsets: async () => undefined,
        commit: async () => {
          calls.push(`${name}.commit`);
        },
        abort: async () => {
          calls.push(`${name}.abort`);
          if (options.abortFails) throw new Error('invalid producer epoch');
        },
      };
    },
  } as unknown as Producer;
}

describe('detector > transaction', () => {
  const setup = (abortFails: boolean) => {
    const calls: string[] = [];
    let producer = fakeProducer('first', calls, { sendFails: true, abortFails });
    const commit = createTransactionCommit({
      producer: () => producer,
      replaceProducer: async () => {
        calls.push('replace');
        producer = fakeProducer('second', calls, { sendFails: false, abortFails: false });
      },
      logger: createLogger({ service: 'test', level: 'silent' }),
      metrics: createDetectorMetrics(),
      topics,
      groupId: 'g',
      stateChunkBytes: () => 512 * 1024,
      onCommitted: () => undefined,
    });
    return { calls, commit };
  };

  it('a transaction whose abort failed is followed by a new producer (kafkajs would refuse every later one)', async () => {
    const { calls, commit } = setup(true);
    await expect(commit(work)).rejects.toThrow('connection refused');
    await commit(work);
    expect(calls).toEqual([
      'first.transaction',
      'first.send',
      'first.abort',
      'replace',
      'second.transaction',
      'second.send',
      'second.commit',
    ]);
  });

  it('an aborted transaction keeps its producer', async () => {
    const { calls, commit } = setup(false);
    await expect(commit(work)).rejects.toThrow('connection refused');
    await expect(commit(work)).rejects.toThrow('connection refused');
    expect(calls).not.toContain('replace');
  });
});

describe('detector > transaction > state chunks', () => {
  it("stays at a quarter of the state topic's max.message.bytes (3 UTF-8 bytes per char), at most 2 MiB", () => {
    expect(stateChunkBytes(8 * 1024 * 1024)).toBe(2 * 1024 * 1024);
    expect(stateChunkBytes(64 * 1024 * 1024)).toBe(2 * 1024 * 1024);
    // A topic made beforehand with the broker's default.
    expect(stateChunkBytes(1024 * 1024)).toBe(256 * 1024);
    expect(stateChunkBytes(0)).toBe(64 * 1024);
  });

  it('splits state records into sends of at most that many bytes, in order', () => {
    const records = Array.from({ length: 10 }, (_, i) => ({ key: `i:${i}`, value: 'x'.repeat(100) }));
    const chunks = [...chunkBySize(records, 400)];
    expect(chunks.map((chunk) => chunk.length)).toEqual([2, 2, 2, 2, 2]);
    expect(chunks.flat()).toEqual(records);
  });
});

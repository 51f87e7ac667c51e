import { createLogger } from '@kaudit/service-kit';
import type { Producer } from 'kafkajs';
import { createDetectorMetrics } from './metrics';
import { createTransactionCommit } from './transaction';

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

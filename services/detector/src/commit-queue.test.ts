import { deferred } from '@kaudit/testkit';
import { createCommitQueue, type Work } from './commit-queue';

const work = (partition: number): Work => ({
  findings: [],
  state: [{ key: `i:p${partition}`, value: 'x', partition }],
  deadLetters: [],
  offsets: [{ partition, offset: String(partition * 10) }],
});

describe('detector > commit-queue', () => {
  it('commits one transaction at a time and groups what waited into the next one', async () => {
    const gates = [deferred(), deferred()];
    const committed: Work[] = [];
    const queue = createCommitQueue(async (w) => {
      committed.push(w);
      await gates[committed.length - 1]!.promise;
    });
    const first = queue.submit(work(0));
    const second = queue.submit(work(1));
    const third = queue.submit(work(2));
    expect(committed.map((w) => w.offsets)).toEqual([[{ partition: 0, offset: '0' }]]);
    gates[0]!.resolve();
    await first;
    expect(committed).toHaveLength(2);
    expect(committed[1]!.offsets.map((o) => o.partition)).toEqual([1, 2]);
    expect(committed[1]!.state.map((m) => m.key)).toEqual(['i:p1', 'i:p2']);
    gates[1]!.resolve();
    await Promise.all([second, third, queue.idle()]);
  });

  it('fails every submission of a failed transaction, and goes on with the next', async () => {
    const gate = deferred();
    let calls = 0;
    const queue = createCommitQueue(async () => {
      calls += 1;
      if (calls === 1) await gate.promise;
      if (calls === 2) throw new Error('fenced');
    });
    const first = queue.submit(work(0));
    const second = queue.submit(work(1));
    const third = queue.submit(work(2));
    gate.resolve();
    await expect(first).resolves.toBeUndefined();
    await expect(second).rejects.toThrow('fenced');
    await expect(third).rejects.toThrow('fenced');
    await expect(queue.submit(work(3))).resolves.toBeUndefined();
    expect(calls).toBe(3);
  });

  it('starts again for work submitted after it went idle', async () => {
    const seen: number[] = [];
    const queue = createCommitQueue(async (w) => {
      seen.push(...w.offsets.map((o) => o.partition));
    });
    await queue.submit(work(0));
    await queue.idle();
    await queue.submit(work(1));
    expect(seen).toEqual([0, 1]);
  });
});

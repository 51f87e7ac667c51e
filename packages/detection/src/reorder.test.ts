import { newIdentityState } from './baseline';
import { type Arrival, createArrivalQueue } from './reorder';
import type { Observation } from './scope';

const alice = newIdentityState('prod', 'alice', 0);
const bob = newIdentityState('prod', 'bob', 0);

function arrival(t: number, key: 'prod/alice' | 'prod/bob', auditID = `a-${t}`): Arrival {
  const observation = {
    t,
    auditID,
    requestKey: '',
    stageRank: 2,
    identity: { username: key, kind: 'user', groups: [] },
    verb: 'get',
  } satisfies Observation;
  return { observation, key, state: key === 'prod/alice' ? alice : bob };
}

/** Everything due up to `upTo`, as "t key" strings. */
function takeAll(queue: ReturnType<typeof createArrivalQueue>, upTo: number): string[] {
  const out: string[] = [];
  for (let next = queue.takeDue(upTo); next; next = queue.takeDue(upTo))
    out.push(`${next.observation.t} ${next.key}`);
  return out;
}

describe('detection > reorder > arrival queue', () => {
  it('gives arrivals back in event-time order across identities, only once due', () => {
    const queue = createArrivalQueue();
    for (const a of [arrival(10, 'prod/bob'), arrival(30, 'prod/alice'), arrival(20, 'prod/alice')])
      queue.add(a);
    expect(queue.takeDue(5)).toBeUndefined();
    expect(takeAll(queue, 25)).toEqual(['10 prod/bob', '20 prod/alice']);
    expect(queue.size).toBe(1);
    // A late arrival (before what is left) goes to the head.
    queue.add(arrival(15, 'prod/bob'));
    expect(takeAll(queue, 100)).toEqual(['15 prod/bob', '30 prod/alice']);
    expect(queue.size).toBe(0);
  });

  it('breaks ties by auditID, then by partition key, whatever the arrival order', () => {
    const orders = [
      [arrival(10, 'prod/bob', 'x'), arrival(10, 'prod/alice', 'x'), arrival(10, 'prod/alice', 'w')],
      [arrival(10, 'prod/alice', 'w'), arrival(10, 'prod/bob', 'x'), arrival(10, 'prod/alice', 'x')],
    ];
    const results = orders.map((arrivals) => {
      const queue = createArrivalQueue();
      for (const a of arrivals) queue.add(a);
      const out: string[] = [];
      for (let next = queue.takeDue(10); next; next = queue.takeDue(10))
        out.push(`${next.observation.auditID} ${next.key}`);
      return out;
    });
    expect(results[0]).toEqual(['w prod/alice', 'x prod/alice', 'x prod/bob']);
    expect(results[1]).toEqual(results[0]);
  });

  it('sorts what restore added unsorted, and drops the arrivals of a replaced state', () => {
    const queue = createArrivalQueue();
    for (const t of [50, 10, 40]) queue.addUnsorted(arrival(t, 'prod/alice'));
    queue.addUnsorted(arrival(20, 'prod/bob'));
    queue.removeState(bob);
    queue.add(arrival(30, 'prod/bob'));
    expect(takeAll(queue, 100)).toEqual(['10 prod/alice', '30 prod/bob', '40 prod/alice', '50 prod/alice']);
  });

  it('stays in order across its compaction of the consumed head', () => {
    const queue = createArrivalQueue();
    const taken: number[] = [];
    for (let t = 0; t < 20_000; t++) {
      queue.add(arrival(t, t % 2 ? 'prod/alice' : 'prod/bob'));
      // Two behind: the queue keeps a tail while its head is consumed, as the watermark does.
      const next = queue.takeDue(t - 2);
      if (next) taken.push(next.observation.t);
    }
    for (let next = queue.takeDue(Infinity); next; next = queue.takeDue(Infinity))
      taken.push(next.observation.t);
    expect(taken).toEqual(Array.from({ length: 20_000 }, (_, t) => t));
  });
});

import { createOffsetTracker } from './offset-tracker';

describe('alerter > offset-tracker', () => {
  test('commits only the contiguous acknowledged prefix', () => {
    const tracker = createOffsetTracker();
    const [a, b, c] = ['10', '11', '12'].map((o) => tracker.track(0, o));
    tracker.ack(b!);
    tracker.ack(c!);
    expect(tracker.takeCommittable()).toEqual([]);
    expect(tracker.inFlight()).toBe(1);
    tracker.ack(a!);
    expect(tracker.takeCommittable()).toEqual([{ partition: 0, offset: '13' }]);
    expect(tracker.takeCommittable()).toEqual([]);
    expect(tracker.inFlight()).toBe(0);
  });

  test('keeps partitions apart', () => {
    const tracker = createOffsetTracker();
    const p0 = tracker.track(0, '5');
    tracker.track(1, '7');
    tracker.ack(p0);
    expect(tracker.takeCommittable()).toEqual([{ partition: 0, offset: '6' }]);
  });

  test('a failed commit is restored unless a newer offset replaced it', () => {
    const tracker = createOffsetTracker();
    const a = tracker.track(0, '1');
    const b = tracker.track(0, '2');
    tracker.ack(a);
    const taken = tracker.takeCommittable();
    tracker.restore(taken);
    expect(tracker.takeCommittable()).toEqual([{ partition: 0, offset: '2' }]);
    tracker.ack(b);
    tracker.restore([{ partition: 0, offset: '2' }]);
    expect(tracker.takeCommittable()).toEqual([{ partition: 0, offset: '3' }]);
  });

  test('an ack after the partition was revoked and reassigned does not acknowledge the new copy', () => {
    const tracker = createOffsetTracker();
    const old = tracker.track(3, '100');
    tracker.drop(3);
    expect(tracker.inFlight()).toBe(0);
    const again = tracker.track(3, '100');
    tracker.ack(old);
    expect(tracker.takeCommittable()).toEqual([]);
    expect(tracker.inFlight()).toBe(1);
    tracker.ack(again);
    tracker.ack(again);
    expect(tracker.inFlight()).toBe(0);
    expect(tracker.takeCommittable()).toEqual([{ partition: 3, offset: '101' }]);
  });

  test('offsets beyond 2^53 stay exact', () => {
    const tracker = createOffsetTracker();
    tracker.ack(tracker.track(0, '9007199254740993'));
    expect(tracker.takeCommittable()).toEqual([{ partition: 0, offset: '9007199254740994' }]);
  });
});

import { createUsualBatch } from './usual-batch';

describe('sink > usual batch', () => {
  it.each([
    ['nothing seen yet: the floor', [], 100],
    ['the largest recent batch', [50, 300, 120], 300],
    ['never below the floor', [10, 20], 100],
    ['never above the cap (the spool bound)', [5000], 1000],
    ['forgets what left the window', [900, 1, 1, 1, 1], 100],
  ])('%s', (_name, seen, expected) => {
    const usual = createUsualBatch({ floorBytes: 100, capBytes: 1000, window: 4 });
    for (const bytes of seen) usual.observe(bytes);
    expect(usual.bytes()).toBe(expected);
  });
});

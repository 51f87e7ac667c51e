import { coresBetween, formatCores, readCpu } from './bench-cpu';

describe('devstack > bench cpu', () => {
  it('gives the cores each process used between two readings, largest first', () => {
    const before = new Map([
      ['sink', 10],
      ['elasticsearch', 100],
    ]);
    const after = new Map([
      ['sink', 13],
      ['elasticsearch', 115],
      ['kafka', 4],
    ]);
    const cores = coresBetween(before, after, 30);
    expect(cores).toEqual([
      ['elasticsearch', 0.5],
      ['sink', 0.1],
      ['kafka', Number.NaN],
    ]);
    expect(formatCores(cores)).toBe('elasticsearch 0.50, sink 0.10, kafka ?');
  });

  it('reads this process and a process tree from /proc (0 for a pid that is gone)', () => {
    const reading = readCpu({ self: process.pid, gone: 2 ** 22 + 1 });
    expect(reading.get('load generator')).toBeGreaterThan(0);
    if (process.platform === 'linux') expect(reading.get('self')).toBeGreaterThanOrEqual(0);
    expect(reading.get('gone')).toBe(0);
  });
});

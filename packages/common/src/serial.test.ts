import { serially } from './serial';

describe('common > serially', () => {
  it('runs tasks one at a time in the order handed in, even when each yields midway', async () => {
    const inTurn = serially();
    const log: string[] = [];
    const task = (name: string) => async () => {
      log.push(`${name} start`);
      await new Promise(setImmediate);
      log.push(`${name} end`);
      return name;
    };
    const results = await Promise.all([inTurn(task('a')), inTurn(task('b')), inTurn(task('c'))]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(log).toEqual(['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
  });

  it('a failed task fails its own caller only; the next one still runs', async () => {
    const inTurn = serially();
    const failed = inTurn(async () => {
      throw new Error('boom');
    });
    const next = inTurn(async () => 'ran');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ran');
  });
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSlackStandin } from './slack-standin';

describe('devstack > slack stand-in', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kaudit-slack-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers like an incoming webhook, keeps each message and logs it as one JSON line', async () => {
    const logFile = join(dir, 'logs', 'slack.log');
    const slack = await startSlackStandin({ logFile });
    try {
      const waiting = slack.waitForMessages(2, 5000);
      const first = await fetch(slack.url, { method: 'POST', body: JSON.stringify({ text: 'one' }) });
      expect([first.status, await first.text()]).toEqual([200, 'ok']);
      const bad = await fetch(slack.url, { method: 'POST', body: 'not json' });
      expect([bad.status, await bad.text()]).toEqual([400, 'invalid_payload']);
      expect((await fetch(slack.url)).status).toBe(405);

      const messages = await waiting;
      expect(messages.map((m) => m.body)).toEqual([{ text: 'one' }, 'not json']);
      expect(messages[0]?.path).toBe(new URL(slack.url).pathname);
      const logged = readFileSync(logFile, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { body: unknown });
      expect(logged.map((line) => line.body)).toEqual([{ text: 'one' }, 'not json']);
      await expect(slack.waitForMessages(3, 50)).rejects.toThrow('2 of 3 messages');
    } finally {
      await slack.close();
    }
  });

  it('answers the failWith status without recording while an outage is simulated, then 200 again', async () => {
    const slack = await startSlackStandin();
    try {
      slack.failWith(500);
      const during = await fetch(slack.url, { method: 'POST', body: JSON.stringify({ text: 'lost?' }) });
      expect(during.status).toBe(500);
      expect([slack.refused, slack.messages.length]).toEqual([1, 0]);
      slack.failWith(undefined);
      const after = await fetch(slack.url, { method: 'POST', body: JSON.stringify({ text: 'again' }) });
      expect(after.status).toBe(200);
      expect(slack.messages.map((m) => m.body)).toEqual([{ text: 'again' }]);
      expect(slack.refused).toBe(1);
    } finally {
      await slack.close();
    }
  });
});

import { createLogger } from '@kaudit/service-kit';
import { deferred } from '@kaudit/testkit';
import { buildFinding } from '../test/finding-fixture';
import { findingAlert } from './alert';
import { createDeliveryQueue } from './delivery-queue';
import { DEFAULT_RETRY, DeliveryError, type Destination } from './destinations';
import { Secret } from './secrets';

const logger = createLogger({ service: 'alerter-test', level: 'silent' });

function fakeDestination(send: Destination['send'], overrides: Partial<Destination> = {}): Destination {
  return {
    name: 'fake',
    type: 'webhook',
    timeoutMs: 1000,
    concurrency: 1,
    retry: { retries: 3, maxElapsedMs: 60_000, initialDelayMs: 1, maxDelayMs: 2, maxRetryAfterMs: 1000 },
    secrets: [new Secret('https://hooks.example.com/SECRET-PATH')],
    send,
    ...overrides,
  };
}

const http = (status: number, retryAfterMs?: number) =>
  new DeliveryError(`fake: HTTP ${status}`, String(status), {
    statusCode: status,
    retriable: status >= 500 || status === 429,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });

describe('alerter > delivery-queue', () => {
  test('retries a 5xx, then delivers, reporting each retry', async () => {
    const answers = [http(500), http(503)];
    const retries: string[] = [];
    const queue = createDeliveryQueue(
      fakeDestination(async () => {
        const next = answers.shift();
        if (next) throw next;
      }),
      {
        logger,
        signal: new AbortController().signal,
        hooks: { onRetry: (_d, reason) => retries.push(reason) },
      },
    );
    await expect(queue.push(findingAlert(buildFinding()))).resolves.toEqual({
      status: 'delivered',
      attempts: 3,
    });
    expect(retries).toEqual(['500', '503']);
  });

  test('a 4xx is final: dead-lettered at once', async () => {
    let calls = 0;
    const queue = createDeliveryQueue(
      fakeDestination(async () => {
        calls += 1;
        throw http(400);
      }),
      { logger, signal: new AbortController().signal },
    );
    await expect(queue.push(findingAlert(buildFinding()))).resolves.toMatchObject({
      status: 'dead-lettered',
      cause: 'rejected',
      reason: 'rejected: fake: HTTP 400',
    });
    expect(calls).toBe(1);
  });

  test('gives up after the retry budget, with the reason, and never leaks a secret into it', async () => {
    const queue = createDeliveryQueue(
      fakeDestination(async () => {
        throw new DeliveryError(
          'fake: HTTP 502: upstream https://hooks.example.com/SECRET-PATH down',
          '502',
          {
            statusCode: 502,
            retriable: true,
          },
        );
      }),
      { logger, signal: new AbortController().signal },
    );
    const outcome = await queue.push(findingAlert(buildFinding()));
    expect(outcome).toMatchObject({ status: 'dead-lettered', cause: 'retries_exhausted', attempts: 4 });
    expect(outcome.status === 'dead-lettered' && outcome.reason).toBe(
      'gave up after 4 attempts: fake: HTTP 502: upstream [redacted] down',
    );
  });

  test('a Retry-After beyond maxRetryAfter is not waited for', async () => {
    const queue = createDeliveryQueue(
      fakeDestination(async () => {
        throw http(429, 3_600_000);
      }),
      { logger, signal: new AbortController().signal },
    );
    await expect(queue.push(findingAlert(buildFinding()))).resolves.toMatchObject({
      status: 'dead-lettered',
      cause: 'retry_after_too_long',
      attempts: 1,
    });
  });

  describe('the default retry budget (fake clock)', () => {
    const start = Date.parse('2026-01-06T10:00:00.000Z');
    beforeEach(() => jest.useFakeTimers({ now: start }));
    afterEach(() => jest.useRealTimers());

    /** Advances the fake clock a minute at a time until the delivery has an outcome (at most 6 h). */
    async function outcomeOf(send: Destination['send']) {
      const queue = createDeliveryQueue(fakeDestination(send, { retry: DEFAULT_RETRY }), {
        logger,
        signal: new AbortController().signal,
        random: () => 0.5,
      });
      let outcome: Awaited<ReturnType<typeof queue.push>> | undefined;
      void queue.push(findingAlert(buildFinding())).then((o) => {
        outcome = o;
      });
      for (let minute = 0; outcome === undefined && minute < 360; minute++) {
        await jest.advanceTimersByTimeAsync(60_000);
      }
      return { outcome, at: Date.now() };
    }

    test('a destination down for an hour still gets the alert, no dead letter', async () => {
      const backAt = start + 61 * 60_000;
      const { outcome } = await outcomeOf(async () => {
        if (Date.now() < backAt) throw http(503);
      });
      expect(outcome).toMatchObject({ status: 'delivered' });
    });

    test('a destination down for good dead-letters once maxElapsed (2 h) has passed, not before', async () => {
      const { outcome, at } = await outcomeOf(async () => {
        throw http(503);
      });
      expect(outcome).toMatchObject({ status: 'dead-lettered', cause: 'retries_exhausted' });
      expect(outcome?.status === 'dead-lettered' && outcome.reason).toMatch(
        /^gave up after \d+ attempts in \d+ s: fake: HTTP 503$/,
      );
      // The last retry starts before 2 h; its backoff is at most maxDelay (5 min), plus the minute step.
      expect(at - start).toBeGreaterThanOrEqual(DEFAULT_RETRY.maxElapsedMs);
      expect(at - start).toBeLessThanOrEqual(DEFAULT_RETRY.maxElapsedMs + DEFAULT_RETRY.maxDelayMs + 60_000);
    });
  });

  test('never runs more deliveries at once than the destination concurrency', async () => {
    let running = 0;
    let peak = 0;
    const gates = Array.from({ length: 5 }, () => deferred());
    let n = 0;
    const queue = createDeliveryQueue(
      fakeDestination(
        async () => {
          const gate = gates[n++]!;
          running += 1;
          peak = Math.max(peak, running);
          await gate.promise;
          running -= 1;
        },
        { concurrency: 2 },
      ),
      { logger, signal: new AbortController().signal },
    );
    const outcomes = Array.from({ length: 5 }, () => queue.push(findingAlert(buildFinding())));
    await new Promise((r) => setImmediate(r));
    expect(queue.active()).toBe(2);
    expect(queue.depth()).toBe(3);
    for (const gate of gates) gate.resolve();
    await Promise.all(outcomes);
    expect(peak).toBe(2);
  });

  test('stopping aborts deliveries in progress and waiting: neither delivered nor dead-lettered', async () => {
    const controller = new AbortController();
    const queue = createDeliveryQueue(
      fakeDestination(
        (_alert, signal) =>
          new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason))),
      ),
      { logger, signal: controller.signal },
    );
    const running = queue.push(findingAlert(buildFinding()));
    const waiting = queue.push(findingAlert(buildFinding()));
    controller.abort(new Error('stop'));
    await expect(running).resolves.toEqual({ status: 'aborted' });
    await expect(waiting).resolves.toEqual({ status: 'aborted' });
    await expect(queue.push(findingAlert(buildFinding()))).resolves.toEqual({ status: 'aborted' });
  });
});

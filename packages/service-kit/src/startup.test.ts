import pino from 'pino';
import { z } from 'zod';
import { loadConfig } from './config';
import { AppError } from './errors';
import { createStartup, isTransientStartupError, startupErrorClass, startupTimeoutEnv } from './startup';

/** A pino logger whose lines land in an array, to count what a retried start-up logs. */
function captureLogger() {
  const lines: Array<{ level: number; msg: string; errorClass?: string; step?: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines, warnings: () => lines.filter((l) => l.level === 40) };
}

/** The error kafkajs gives while a fresh broker's new topic is listed but not yet served. */
const notHosted = () =>
  Object.assign(new Error('This server does not host this topic-partition'), {
    name: 'KafkaJSProtocolError',
    type: 'UNKNOWN_TOPIC_OR_PARTITION',
    retriable: true,
  });
const refused = () =>
  Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), {
    name: 'KafkaJSConnectionError',
    code: 'ECONNREFUSED',
    retriable: true,
  });

describe('service-kit > startup', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** Runs the fake clock, timer by timer, until `promise` settles (each retry waits on one). */
  async function settle<T>(promise: Promise<T>): Promise<T> {
    let done = false;
    const watched = promise.finally(() => {
      done = true;
    });
    watched.catch(() => undefined);
    while (!done) await jest.advanceTimersToNextTimerAsync();
    return watched;
  }

  it('retries transient errors until the step succeeds, one warning per class of error', async () => {
    const { logger, warnings, lines } = captureLogger();
    const startup = createStartup({ logger, timeoutMs: 120_000, random: () => 1 });
    const failures = [notHosted(), notHosted(), notHosted(), refused(), refused()];
    let attempts = 0;
    const result = await settle(
      startup.step('ensure topics', async () => {
        attempts += 1;
        const failure = failures.shift();
        if (failure) throw failure;
        return 'created';
      }),
    );
    expect([result, attempts]).toEqual(['created', 6]);
    expect(warnings().map((l) => l.errorClass)).toEqual(['UNKNOWN_TOPIC_OR_PARTITION', 'ECONNREFUSED']);
    expect(lines.filter((l) => l.level === 20)).toHaveLength(3);
    expect(lines.at(-1)).toMatchObject({ level: 30, msg: 'ensure topics: done' });
  });

  it('gives up when KAFKA_STARTUP_TIMEOUT runs out, with an error that names it and keeps the cause', async () => {
    const { logger, warnings } = captureLogger();
    const started = Date.now();
    const startup = createStartup({ logger, timeoutMs: 30_000, random: () => 1 });
    let attempts = 0;
    const error = await settle(
      startup.step('connect the producer', async () => {
        attempts += 1;
        throw refused();
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'KAUDIT_ERR_KAFKA', retriable: false });
    expect((error as Error).message).toMatch(
      /^connect the producer: still failing when KAFKA_STARTUP_TIMEOUT \(30000 ms\) ran out: Connection error/,
    );
    expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
    // Backoff 250 ms doubling to 5 s: 250+500+1000+2000+4000 = 7.75 s, then 5 s waits up to 30 s.
    expect(attempts).toBe(11);
    expect(Date.now() - started).toBe(30_000);
    expect(warnings()).toHaveLength(1);
  });

  it('shares one deadline between the steps of one start', async () => {
    const { logger } = captureLogger();
    const startup = createStartup({ logger, timeoutMs: 10_000, random: () => 1 });
    let firstAttempts = 0;
    await settle(
      startup.step('first', async () => {
        firstAttempts += 1;
        if (Date.now() - (startup.deadline - 10_000) < 8000) throw refused();
      }),
    );
    expect(firstAttempts).toBeGreaterThan(1);
    const second = settle(
      startup.step('second', async () => {
        throw refused();
      }),
    );
    await expect(second).rejects.toThrow(/^second: still failing/);
    expect(Date.now()).toBe(startup.deadline);
  });

  it('stops waiting when the service stops', async () => {
    const { logger } = captureLogger();
    const startup = createStartup({ logger, timeoutMs: 120_000, random: () => 1 });
    const stopping = new AbortController();
    let attempts = 0;
    const step = startup.step(
      'ensure topics',
      async () => {
        attempts += 1;
        if (attempts === 2) stopping.abort(new Error('sink stopping'));
        throw notHosted();
      },
      { signal: stopping.signal },
    );
    await expect(settle(step)).rejects.toThrow('This server does not host this topic-partition');
    expect(attempts).toBe(2);
  });

  it('fails at once on a permanent error, without retrying', async () => {
    const { logger, warnings } = captureLogger();
    const startup = createStartup({ logger, timeoutMs: 120_000 });
    const config = new AppError('KAUDIT_ERR_CONFIG', 'state topic has 1 partitions but events has 3');
    let attempts = 0;
    await expect(
      startup.step('ensure the state topic', async () => {
        attempts += 1;
        throw config;
      }),
    ).rejects.toBe(config);
    expect(attempts).toBe(1);
    expect(warnings()).toHaveLength(0);
  });

  it.each([
    ['a kafkajs error marked retriable', notHosted(), true],
    ['connection refused', refused(), true],
    [
      'kafkajs giving up after its own retries',
      Object.assign(new Error('gave up'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: refused() }),
      true,
    ],
    [
      'a non-retriable wrapper around a connection error',
      Object.assign(new Error('wrapped'), {
        name: 'KafkaJSNonRetriableError',
        retriable: false,
        cause: refused(),
      }),
      true,
    ],
    [
      'a retriable AppError (no leader yet)',
      new AppError('KAUDIT_ERR_KAFKA', 'no leader', { retriable: true }),
      true,
    ],
    ['Elasticsearch not answering', Object.assign(new Error('connect'), { name: 'ConnectionError' }), true],
    [
      'Elasticsearch 503',
      Object.assign(new Error('503'), { name: 'ResponseError', meta: { statusCode: 503 } }),
      true,
    ],
    [
      'Elasticsearch 400',
      Object.assign(new Error('400'), { name: 'ResponseError', meta: { statusCode: 400 } }),
      false,
    ],
    [
      'a certificate Kafka presents that the CA does not sign',
      Object.assign(new Error('unable to verify'), {
        name: 'KafkaJSConnectionError',
        retriable: true,
        code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      }),
      false,
    ],
    [
      'a refused SASL password, even inside retries exceeded',
      Object.assign(new Error('gave up'), {
        name: 'KafkaJSNumberOfRetriesExceeded',
        cause: Object.assign(new Error('SASL SCRAM-SHA-512 authentication failed'), {
          name: 'KafkaJSSASLAuthenticationError',
          retriable: false,
        }),
      }),
      false,
    ],
    ['a non-retriable AppError', new AppError('KAUDIT_ERR_POLICY', 'bad template'), false],
    ['an unknown error', new Error('boom'), false],
  ])('%s', (_name, error, transient) => {
    expect(isTransientStartupError(error)).toBe(transient);
  });

  it('classifies by the innermost protocol type or socket code', () => {
    expect(startupErrorClass(notHosted())).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(
      startupErrorClass(
        Object.assign(new Error('x'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: refused() }),
      ),
    ).toBe('ECONNREFUSED');
    expect(startupErrorClass(new TypeError('x'))).toBe('TypeError');
  });

  it('KAFKA_STARTUP_TIMEOUT: a duration, 2 min by default, at least 1 s', () => {
    const schema = z.object(startupTimeoutEnv);
    expect(loadConfig(schema, {})).toEqual({ KAFKA_STARTUP_TIMEOUT: 120_000 });
    expect(loadConfig(schema, { KAFKA_STARTUP_TIMEOUT: '30s' })).toEqual({ KAFKA_STARTUP_TIMEOUT: 30_000 });
    expect(() => loadConfig(schema, { KAFKA_STARTUP_TIMEOUT: 'soon' })).toThrow(
      /KAFKA_STARTUP_TIMEOUT: must be a duration/,
    );
    expect(() => loadConfig(schema, { KAFKA_STARTUP_TIMEOUT: '10ms' })).toThrow(
      /KAFKA_STARTUP_TIMEOUT: must be at least 1s/,
    );
  });
});

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  AppError,
  ConfigError,
  DEFAULT_KAFKA_BROKERS,
  ERROR_CODES,
  envBoolean,
  envDurationMs,
  envInt,
  envList,
  kafkaBrokersEnv,
  kafkajsLogLevel,
  loadConfig,
  parseDurationMs,
  parseRetryAfterMs,
  retry,
} from './index';

describe('service-kit > config', () => {
  const schema = z.object({
    KAFKA_BROKERS: envList(['127.0.0.1:9092']),
    SINK_PORT: envInt(8443, { min: 1, max: 65535 }),
    SINK_INSECURE_DEV: envBoolean(false),
    FLUSH: envDurationMs(1000),
    SINK_CLUSTER_NAME: z.string({ message: 'is required' }).min(1),
  });

  it('applies defaults and parses values', () => {
    const config = loadConfig(schema, { SINK_CLUSTER_NAME: 'prod', FLUSH: '5s', KAFKA_BROKERS: 'a:1, b:2,' });
    expect(config).toEqual({
      KAFKA_BROKERS: ['a:1', 'b:2'],
      SINK_PORT: 8443,
      SINK_INSECURE_DEV: false,
      FLUSH: 5000,
      SINK_CLUSTER_NAME: 'prod',
    });
  });

  it('names every bad or missing variable in one error', () => {
    let caught: unknown;
    try {
      loadConfig(schema, { SINK_PORT: 'http', SINK_INSECURE_DEV: 'maybe', FLUSH: 'soon' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as ConfigError).message;
    expect(message).toMatch(/SINK_PORT: must be a whole number \(got "http"\)/);
    expect(message).toMatch(/SINK_INSECURE_DEV: must be true or false/);
    expect(message).toMatch(/FLUSH: must be a duration/);
    expect(message).toMatch(/SINK_CLUSTER_NAME: is required/);
    expect((caught as ConfigError).problems).toHaveLength(4);
  });

  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['7d', 604_800_000],
    ['1500', 1500],
    ['fast', undefined],
  ])('parses duration %s', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });
});

describe('service-kit > kafka brokers', () => {
  it("README's shared table gives the default every service uses", () => {
    const readme = readFileSync(join(__dirname, '../../../README.md'), 'utf8');
    expect(readme).toMatch(new RegExp(`^\\| \`KAFKA_BROKERS\` +\\| \`${DEFAULT_KAFKA_BROKERS}\` +\\|`, 'm'));
    expect(loadConfig(z.object(kafkaBrokersEnv), {})).toEqual({ KAFKA_BROKERS: [DEFAULT_KAFKA_BROKERS] });
  });
});

describe('service-kit > kafkajs logs', () => {
  it('keeps kafkajs levels, but an answer to CreateTopics is for ensureTopics to judge (debug)', () => {
    expect(kafkajsLogLevel('Connection', 1, 'Response CreateTopics(key: 19, version: 3)')).toBe('debug');
    expect(kafkajsLogLevel('Connection', 1, 'Response Produce(key: 0, version: 7)')).toBe('error');
    expect(kafkajsLogLevel('Producer', 2, 'Failed to send messages')).toBe('warn');
  });

  it("kafkajs' warning about the sink's deliberately bounded idempotent retries is information", () => {
    const message = 'Limiting retries for the idempotent producer may invalidate EoS guarantees';
    expect(kafkajsLogLevel('Producer', 2, message)).toBe('info');
  });

  // Seen on a fresh broker when the services start together (pnpm start): each is retried by kafkajs.
  it.each([
    ['Response GroupCoordinator(key: 10, version: 2)', 'The group coordinator is not available'],
    [
      'Response InitProducerId(key: 22, version: 1)',
      "The coordinator is loading and hence can't process requests for this group",
    ],
    ['Response FindCoordinator(key: 10, version: 2)', 'This is not the correct coordinator for this group'],
  ])('an answer kafkajs retries is a warning: %s, %s', (message, error) => {
    expect(kafkajsLogLevel('Connection', 1, message, error)).toBe('warn');
  });

  it('a consumer restarting itself after such an error warns; another crash is an error', () => {
    const loading = "The coordinator is loading and hence can't process requests for this group";
    expect(kafkajsLogLevel('Consumer', 1, `Crash: KafkaJSProtocolError: ${loading}`)).toBe('warn');
    expect(kafkajsLogLevel('Consumer', 1, 'Restarting the consumer in 300ms')).toBe('warn');
    expect(kafkajsLogLevel('Consumer', 1, 'Crash: TypeError: x is not a function')).toBe('error');
  });

  it('a send kafkajs retries after such an error warns; another failed send is an error', () => {
    const concurrent =
      'The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing';
    expect(kafkajsLogLevel('Producer', 1, `Failed to send messages: ${concurrent}`)).toBe('warn');
    expect(kafkajsLogLevel('Producer', 1, 'Failed to send messages: Message was too large')).toBe('error');
  });

  it('an answer with an error kafkajs does not retry stays an error', () => {
    const message = 'Response SaslAuthenticate(key: 36, version: 1)';
    expect(kafkajsLogLevel('Connection', 1, message, 'Authentication failed during authentication')).toBe(
      'error',
    );
    expect(kafkajsLogLevel('Connection', 1, message, undefined)).toBe('error');
  });
});

describe('service-kit > errors', () => {
  it('documents every code in docs/errors.md and nothing else', () => {
    const doc = readFileSync(join(__dirname, '../../../docs/errors.md'), 'utf8');
    const documented = [...doc.matchAll(/`(KAUDIT_ERR_[A-Z_]+)`/g)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('catalogs only codes that shipping code uses', () => {
    const root = join(__dirname, '../../..');
    const sources = ['packages', 'services'].flatMap((top) =>
      readdirSync(join(root, top)).flatMap((name) => {
        const src = join(root, top, name, 'src');
        try {
          return (readdirSync(src, { recursive: true }) as string[])
            .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
            .map((file) => readFileSync(join(src, file), 'utf8'));
        } catch {
          return [];
        }
      }),
    );
    const used = new Set(
      sources
        .filter((text) => !text.includes('export const ERROR_CODES'))
        .flatMap((text) => [...text.matchAll(/'(KAUDIT_ERR_[A-Z_]+)'/g)].map((m) => m[1])),
    );
    expect(Object.keys(ERROR_CODES).filter((code) => !used.has(code))).toEqual([]);
  });

  it('carries code, status and retriability', () => {
    const error = new AppError('KAUDIT_ERR_KAFKA', 'broker down', { statusCode: 503, retriable: true });
    expect([error.code, error.statusCode, error.retriable]).toEqual(['KAUDIT_ERR_KAFKA', 503, true]);
  });
});

describe('service-kit > retry', () => {
  it('retries retriable errors with growing, jittered delays and then succeeds', async () => {
    const delays: number[] = [];
    let calls = 0;
    const result = await retry(
      async () => {
        calls += 1;
        if (calls < 3) throw new AppError('KAUDIT_ERR_KAFKA', 'down', { retriable: true });
        return 'ok';
      },
      {
        retries: 5,
        initialDelayMs: 1,
        maxDelayMs: 4,
        random: () => 1,
        onRetry: (_e, _a, d) => delays.push(d),
      },
    );
    expect(result).toBe('ok');
    expect(delays).toEqual([1, 2]);
  });

  it('does not retry an error marked non-retriable', async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls += 1;
          throw new AppError('KAUDIT_ERR_BAD_REQUEST', 'bad', { retriable: false });
        },
        { retries: 5, initialDelayMs: 1, maxDelayMs: 1 },
      ),
    ).rejects.toThrow('bad');
    expect(calls).toBe(1);
  });

  it('never waits less than Retry-After and gives up after the budget', async () => {
    const delays: number[] = [];
    await expect(
      retry(
        async () => {
          throw Object.assign(new Error('429'), { retryAfterMs: 7 });
        },
        {
          retries: 2,
          initialDelayMs: 1,
          maxDelayMs: 1,
          random: () => 0,
          onRetry: (_e, _a, d) => delays.push(d),
        },
      ),
    ).rejects.toThrow('429');
    expect(delays).toEqual([7, 7]);
  });

  it('parses Retry-After seconds and dates', () => {
    expect(parseRetryAfterMs('3')).toBe(3000);
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:10 GMT', Date.parse('2026-01-01T00:00:00Z'))).toBe(
      10_000,
    );
    expect(parseRetryAfterMs('soon')).toBeUndefined();
  });
});

import { EventEmitter } from 'node:events';
import { createLiveness, logConsumerCrash } from './liveness';
import { createLogger } from './logger';
import { createMetrics } from './metrics';
import { startOpsServer } from './ops';
import { registerShutdown } from './shutdown';

const logger = createLogger({ service: 'test', level: 'silent' });

/** Stands in for a kafkajs consumer: the policy only listens to its CRASH event. */
function fakeConsumer() {
  const emitter = new EventEmitter();
  return {
    events: { CRASH: 'consumer.crash' },
    on: (event: string, listener: (event: { payload: { error: Error; restart: boolean } }) => void) =>
      emitter.on(event, listener),
    crash: (restart: boolean) =>
      emitter.emit('consumer.crash', { payload: { error: new Error('boom'), restart } }),
  };
}

describe('service-kit > liveness', () => {
  it('a crash kafkajs restarts is transient; one it does not restart is fatal, once', () => {
    const liveness = createLiveness({ logger });
    const consumer = fakeConsumer();
    const fatal = jest.fn();
    liveness.onFatal(fatal);
    liveness.watchConsumer(consumer, 'events consumer');

    consumer.crash(true);
    expect([liveness.alive(), fatal.mock.calls.length]).toEqual([true, 0]);

    consumer.crash(false);
    consumer.crash(false);
    expect(liveness.alive()).toBe(false);
    expect(liveness.reason()).toBe('events consumer crashed and will not be restarted: boom');
    expect(fatal.mock.calls).toEqual([['events consumer crashed and will not be restarted: boom']]);
  });

  it('a handler registered after the death is called at once', () => {
    const liveness = createLiveness({ logger });
    liveness.fatal('listener closed');
    const late = jest.fn();
    liveness.onFatal(late);
    expect(late).toHaveBeenCalledWith('listener closed');
  });

  it('/healthz answers 503 with the reason once dead, /readyz too, whatever isReady says', async () => {
    const liveness = createLiveness({ logger });
    const server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      registry: createMetrics({ service: 'test', defaultMetrics: false }).registry,
      isReady: () => true,
      liveness,
      logger,
    });
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${server.port}${path}`);
      return [response.status, await response.json()];
    };
    try {
      expect(await get('/healthz')).toEqual([200, { status: 'ok' }]);
      liveness.fatal('events consumer crashed and will not be restarted: boom');
      expect(await get('/healthz')).toEqual([
        503,
        { status: 'dead', reason: 'events consumer crashed and will not be restarted: boom' },
      ]);
      expect((await get('/readyz'))[0]).toBe(503);
    } finally {
      await server.close();
    }
  });

  it('a fatal error runs the shutdown steps and exits 1', async () => {
    const liveness = createLiveness({ logger });
    const ran: string[] = [];
    const exited = new Promise<number>((resolve) => {
      registerShutdown({
        logger,
        liveness,
        exit: resolve,
        steps: [{ name: 'consumer', run: async () => void ran.push('consumer') }],
      });
    });
    liveness.fatal('gone');
    expect(await exited).toBe(1);
    expect(ran).toEqual(['consumer']);
  });
});

describe('service-kit > consumer crash line', () => {
  it('warns when kafkajs restarts the consumer, errs when it does not', () => {
    const lines: Array<[string, unknown]> = [];
    const record = (level: string) => (fields: unknown) => lines.push([level, fields]);
    const fake = { warn: record('warn'), error: record('error') } as unknown as Parameters<
      typeof logConsumerCrash
    >[0];
    const error = new Error('The coordinator is loading');
    logConsumerCrash(fake, { error, restart: true });
    logConsumerCrash(fake, { error, restart: false });
    expect(lines).toEqual([
      ['warn', { err: error, restart: true }],
      ['error', { err: error, restart: false }],
    ]);
  });
});

import { createLogger } from './logger';
import { createMetrics } from './metrics';
import { startOpsServer } from './ops';

describe('service-kit > ops', () => {
  it('serves health, readiness that follows isReady, and Prometheus metrics', async () => {
    const metrics = createMetrics({ service: 'test', defaultMetrics: false });
    metrics.counter({ name: 'kaudit_test_events_total', help: 'events' }).inc(3);
    let ready = false;
    const server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      registry: metrics.registry,
      isReady: () => ready,
      logger: createLogger({ service: 'test', level: 'silent' }),
    });
    const base = `http://127.0.0.1:${server.port}`;
    try {
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const notReady = await fetch(`${base}/readyz`);
      expect([notReady.status, notReady.headers.get('retry-after')]).toEqual([503, '5']);
      ready = true;
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text).toContain('kaudit_test_events_total{service="test"} 3');
    } finally {
      await server.close();
    }
  });
});

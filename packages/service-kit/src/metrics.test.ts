import { alsoCount, createMetrics } from './metrics';

describe('service-kit > metrics', () => {
  it('counts a renamed metric under its deprecated names too, labels and all', async () => {
    const m = createMetrics({ service: 'test', defaultMetrics: false });
    const sent = m.counter({
      name: 'kaudit_test_sent_total',
      help: 'sent',
      labelNames: ['topic'],
      deprecatedNames: ['kaudit_test_messages_sent_total'],
    });
    sent.inc({ topic: 'a' }, 2);
    sent.inc({ topic: 'a' });
    const text = await m.registry.metrics();
    expect(text).toContain('kaudit_test_sent_total{topic="a",service="test"} 3');
    expect(text).toContain('kaudit_test_messages_sent_total{topic="a",service="test"} 3');
    expect(text).toContain(
      '# HELP kaudit_test_messages_sent_total sent (deprecated name of kaudit_test_sent_total)',
    );
  });

  it('feeds a vocabulary counter from a finer one, with labels of its own', async () => {
    const m = createMetrics({ service: 'test', defaultMetrics: false });
    const dropped = m.counter({ name: 'kaudit_test_dropped_total', help: 'dropped', labelNames: ['reason'] });
    const total = m.counter({ name: 'kaudit_test_total', help: 'all' });
    const unrouted = alsoCount(
      m.counter({ name: 'kaudit_test_unrouted_total', help: 'unrouted' }),
      dropped,
      () => ({
        reason: 'unrouted',
      }),
    );
    alsoCount(unrouted, total, () => ({}));
    unrouted.inc();
    unrouted.inc(4);
    const text = await m.registry.metrics();
    expect(text).toContain('kaudit_test_unrouted_total{service="test"} 5');
    expect(text).toContain('kaudit_test_dropped_total{reason="unrouted",service="test"} 5');
    expect(text).toContain('kaudit_test_total{service="test"} 5');
  });
});

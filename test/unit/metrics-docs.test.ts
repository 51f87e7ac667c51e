import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAlerterMetrics } from '../../services/alerter/src/metrics';
import { createDetectorMetrics } from '../../services/detector/src/metrics';
import { createIndexerMetrics } from '../../services/indexer/src/metrics';
import { createSinkMetrics } from '../../services/sink/src/metrics';

// Metric names are contracts (dashboards, alert rules, the Helm chart's PrometheusRule): the page
// that lists them must list exactly what the services register, and every service the vocabulary.
const doc = readFileSync(join(__dirname, '../../docs/metrics.md'), 'utf8');
const documented = new Set([...doc.matchAll(/`(kaudit_[a-z_]+)`/g)].map((m) => m[1]!));

describe('docs > metrics', () => {
  it.each([
    ['sink', createSinkMetrics],
    ['detector', createDetectorMetrics],
    ['indexer', createIndexerMetrics],
    ['alerter', createAlerterMetrics],
  ] as const)(
    '%s: every metric it registers is in docs/metrics.md, the five of the vocabulary too',
    async (service, create) => {
      const { registry } = create();
      const names = (await registry.getMetricsAsJSON())
        .map((metric) => metric.name)
        .filter((name) => name.startsWith(`kaudit_${service}_`));
      expect(names.filter((name) => !documented.has(name))).toEqual([]);
      for (const word of ['received', 'sent', 'errors', 'dropped', 'dead_lettered'])
        expect(names).toContain(`kaudit_${service}_${word}_total`);
      const listed = [...documented].filter((name) => name.startsWith(`kaudit_${service}_`));
      expect(listed.filter((name) => !names.includes(name))).toEqual([]);
    },
  );
});

import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  Registry,
} from 'prom-client';

export type { Counter, Gauge, Histogram, Registry } from 'prom-client';

type Opts<C> = Omit<C, 'registers'>;

type Labels = Record<string, string | number>;

/**
 * Makes every `inc` of `primary` also count on `other`, with the labels `labels` makes of primary's
 * (default: the same). How a renamed metric keeps its old name (docs/metrics.md) and how a finer
 * counter feeds one of the shared vocabulary (received / sent / errors / dropped / dead_lettered).
 */
export function alsoCount<T extends string>(
  primary: Counter<T>,
  other: Counter<string>,
  labels: (labels: Partial<Record<T, string | number>>) => Labels = (l) => l as Labels,
): Counter<T> {
  const inc = primary.inc.bind(primary) as (a?: Labels | number, b?: number) => void;
  const otherInc = other.inc.bind(other) as (a?: Labels | number, b?: number) => void;
  (primary as { inc: unknown }).inc = (a?: Labels | number, b?: number) => {
    inc(a, b);
    const own = typeof a === 'object' ? a : {};
    const value = typeof a === 'number' ? a : (b ?? 1);
    const mapped = labels(own as Partial<Record<T, string | number>>);
    if (Object.keys(mapped).length > 0) otherInc(mapped, value);
    else otherInc(value);
  };
  return primary;
}

/** One registry per service with Node's default metrics; every series carries service=<name>. */
export function createMetrics(options: { service: string; defaultMetrics?: boolean }) {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'kaudit_' });
  return {
    registry,
    /**
     * `deprecatedNames`: the metric's old names, registered beside it and counted with it, so the
     * dashboards and alert rules that use them keep working (docs/metrics.md lists them).
     */
    counter: <T extends string>(opts: Opts<CounterConfiguration<T>> & { deprecatedNames?: string[] }) => {
      const { deprecatedNames = [], ...config } = opts;
      const counter = new Counter<T>({ ...config, registers: [registry] });
      for (const name of deprecatedNames) {
        const help = `${config.help} (deprecated name of ${config.name})`;
        alsoCount(counter, new Counter<T>({ ...config, name, help, registers: [registry] }));
      }
      return counter;
    },
    gauge: <T extends string>(opts: Opts<GaugeConfiguration<T>>) =>
      new Gauge<T>({ ...opts, registers: [registry] }),
    histogram: <T extends string>(opts: Opts<HistogramConfiguration<T>>) =>
      new Histogram<T>({ ...opts, registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

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

/** One registry per service with Node's default metrics; every series carries service=<name>. */
export function createMetrics(options: { service: string; defaultMetrics?: boolean }) {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'kaudit_' });
  return {
    registry,
    counter: <T extends string>(opts: Opts<CounterConfiguration<T>>) =>
      new Counter<T>({ ...opts, registers: [registry] }),
    gauge: <T extends string>(opts: Opts<GaugeConfiguration<T>>) =>
      new Gauge<T>({ ...opts, registers: [registry] }),
    histogram: <T extends string>(opts: Opts<HistogramConfiguration<T>>) =>
      new Histogram<T>({ ...opts, registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Wraps a kafkajs client so a test can kill its consumers for good against a real broker: once
 * `crash()` is called, the next message any of its consumers hands to the service's handler throws
 * an error marked non-retriable instead, and kafkajs crashes that consumer with restart: false — the
 * same event a fatal broker error or a given-up restart gives. Everything else is the real client.
 */
export interface ConsumerFault<K> {
  kafka: K;
  crash(): void;
}

type Handler = (payload: unknown) => Promise<void>;
interface RunConfig {
  eachBatch?: Handler;
  eachMessage?: Handler;
}
interface Runnable {
  run(config?: RunConfig): Promise<void>;
}

export function consumerFault<K extends object>(kafka: K): ConsumerFault<K> {
  let crashing = false;
  const guard = (handler: Handler | undefined): Handler | undefined =>
    handler &&
    (async (payload) => {
      if (crashing) throw Object.assign(new Error('injected fatal consumer error'), { retriable: false });
      return handler(payload);
    });
  const proxy = new Proxy(kafka, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (property !== 'consumer') return value.bind(target);
      return (...args: unknown[]) => {
        const consumer = value.apply(target, args) as Runnable;
        const run = consumer.run.bind(consumer);
        consumer.run = (config = {}) =>
          run({ ...config, eachBatch: guard(config.eachBatch), eachMessage: guard(config.eachMessage) });
        return consumer;
      };
    },
  });
  return {
    kafka: proxy,
    crash: () => {
      crashing = true;
    },
  };
}

import { createRedactor } from '@kaudit/redaction';
import {
  createLogger,
  defineService,
  type Liveness,
  type Logger,
  type Service,
  type ServiceDeps,
  serviceKafka,
  workerIndex,
} from '@kaudit/service-kit';
import { createApp } from './app';
import { createAuthenticator, createTokenStore } from './auth';
import { insecureWarnings, type SinkConfig } from './config';
import { createDelivery, type Delivery } from './delivery';
import { createEventHubsBridge, type EventHubsBridge } from './event-hubs-bridge';
import { createSinkMetrics, type SinkMetrics } from './metrics';
import { createKafkaSender, type Sender } from './producer';
import { type SinkServer, startSinkServer } from './server';
import { loadSourceCredentials } from './source-auth';
import { openSpool, type Spool } from './spool';
import { startSinkPool, workerConfig } from './workers';

/**
 * The whole sink from a config: spool, producer, drainer, app, server. main.ts (through createSinkService
 * below) adds signals; tests and the benchmark start it in-process. stop() is the graceful order: stop taking requests and let
 * in-flight ones finish, stop the drainer, flush and disconnect the producer, close the spool.
 */
export interface RunningSink {
  port: number;
  metrics: SinkMetrics;
  spool: Spool;
  sender: Sender;
  delivery: Delivery;
  server: SinkServer;
  /** The AKS bridge, when SINK_EVENTHUB_BROKERS is set. */
  bridge: EventHubsBridge | undefined;
  steps: Array<{ name: string; run: () => Promise<void> }>;
  stop(): Promise<void>;
}

export async function startSink(
  config: SinkConfig,
  logger: Logger,
  options: { tlsPollIntervalMs?: number; metrics?: SinkMetrics; liveness?: Liveness } = {},
): Promise<RunningSink> {
  // Connection attempts fail fast: the producer's own loop retries, and the spool covers the gap. A
  // refused password or CA stops the start here; an unreachable Kafka does not (events spool).
  const kafka = await serviceKafka({
    service: 'sink',
    brokers: config.kafkaBrokers,
    security: config.kafkaSecurity,
    logger,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 },
  });
  // The Event Hub's endpoint (AKS), verified the same way: a refused connection string or CA stops the
  // start, before the spool's lock is taken.
  const hub = config.eventHub
    ? await serviceKafka({
        service: 'sink-eventhubs',
        brokers: config.eventHub.brokers,
        security: config.eventHub.security,
        logger,
      })
    : undefined;
  const metrics = options.metrics ?? createSinkMetrics();
  metrics.spoolCapacityBytes.set(config.spoolMaxBytes);
  const spool = await openSpool({
    dir: config.spoolDir,
    maxBytes: config.spoolMaxBytes,
    logger,
    onBytes: (bytes) => metrics.spoolBytes.set(bytes),
    onCorrupt: () => metrics.dropped.inc({ reason: 'spool_corrupt' }),
  });
  const sender = createKafkaSender({
    kafka,
    logger,
    metrics,
    topics: [config.eventsTopic, config.dlqTopic],
    startupTimeoutMs: config.kafkaStartupTimeoutMs,
  });
  const delivery = createDelivery({
    sender,
    spool,
    logger,
    metrics,
    dlqTopic: config.dlqTopic,
    // Half the budget for Kafka, the rest to spool and answer in time.
    directTimeoutMs: Math.floor(config.requestTimeoutMs / 2),
  });
  const tokens = config.authTokenFile ? createTokenStore(config.authTokenFile, logger) : undefined;
  const authenticate = createAuthenticator({
    mtls: config.tls?.caFile !== undefined,
    allowedSubjects: config.allowedSubjects,
    tokens: tokens?.current,
    allowAnonymous: config.insecureDev && !config.tls?.caFile && !config.authTokenFile,
  });
  const ingest = {
    redactor: createRedactor(config.redactionPolicy),
    eventsTopic: config.eventsTopic,
    dlqTopic: config.dlqTopic,
  };
  const sources = loadSourceCredentials(config.sources, logger);
  const app = createApp({
    logger,
    metrics,
    authenticate,
    ingest,
    delivery,
    clusterName: config.clusterName,
    maxBodyBytes: config.maxBodyBytes,
    maxEventBytes: config.maxEventBytes,
    requestTimeoutMs: config.requestTimeoutMs,
    sources: sources.routes,
  });
  let bridge: EventHubsBridge | undefined;
  if (config.eventHub && hub) {
    bridge = createEventHubsBridge({
      source: hub,
      topic: config.eventHub.topic,
      groupId: config.eventHub.groupId,
      clusterName: config.clusterName,
      sender,
      ingest,
      logger,
      metrics,
    });
  }
  sender.start();
  delivery.start();
  await bridge?.start();
  const server = await startSinkServer({
    app,
    tls: config.tls,
    logger,
    port: config.port,
    host: config.host,
    requestTimeoutMs: config.requestTimeoutMs,
    tlsHandshakeTimeoutMs: config.tlsHandshakeTimeoutMs,
    ...(options.tlsPollIntervalMs !== undefined ? { tlsPollIntervalMs: options.tlsPollIntervalMs } : {}),
    watch: [
      ...(tokens && config.authTokenFile ? [{ file: config.authTokenFile, onChange: tokens.reload }] : []),
      ...sources.watch,
    ],
  });

  // The sink's one way to be dead (docs/operations.md): its listener gone while it is not shutting down
  // (it can take no events; /healthz goes with it). Kafka down is not: the spool takes the events.
  let closing = false;
  const listenerLost = (err?: Error) => {
    if (!closing) options.liveness?.fatal('the HTTPS listener closed while the sink was running', err);
  };
  server.server.once('close', () => listenerLost());
  server.server.once('error', listenerLost);

  const steps = [
    // First: a batch read from the hub and not yet acknowledged stays uncommitted, to be read again.
    ...(bridge ? [{ name: 'stop the Event Hubs bridge', run: () => bridge.stop() }] : []),
    {
      name: 'finish in-flight requests',
      run: () => {
        closing = true;
        return server.close();
      },
    },
    { name: 'stop the spool drainer', run: () => delivery.stop() },
    { name: 'flush and disconnect the producer', run: () => sender.stop() },
    { name: 'close the spool', run: () => spool.close() },
  ];
  return {
    port: server.port,
    metrics,
    spool,
    sender,
    delivery,
    server,
    bridge,
    steps,
    async stop() {
      for (const step of steps) await step.run();
    },
  };
}

/**
 * What main.ts runs: startSink (above) inside the service shell; its steps become the shutdown. Tests and
 * the benchmark call startSink themselves. With SINK_WORKERS > 1 this process is the pool's primary
 * (workers.ts): it forks the workers, each of which runs this same function as a single sink.
 */
export function createSinkService(config: SinkConfig, deps: ServiceDeps = {}): Service {
  const worker = workerIndex();
  if (worker === undefined && config.workers > 1) {
    return defineService({
      name: 'sink',
      logLevel: config.logLevel,
      deps,
      timeoutMs: 35_000,
      async start({ logger, liveness, onStop }) {
        const pool = await startSinkPool(config, logger, liveness);
        onStop('stop the workers', () => pool.stop());
      },
    });
  }
  const own = worker === undefined ? config : workerConfig(config, worker, config.workers);
  return defineService({
    name: 'sink',
    logLevel: own.logLevel,
    deps,
    ...(worker !== undefined
      ? {
          createLogger: () =>
            createLogger({ service: 'sink', level: own.logLevel }).child({ worker, pid: process.pid }),
        }
      : {}),
    timeoutMs: 30_000,
    async start({ logger, liveness, onStop }) {
      for (const warning of insecureWarnings(own)) logger.warn({ SINK_INSECURE_DEV: true }, warning);
      const sink = await startSink(own, logger, { liveness });
      for (const step of sink.steps) onStop(step.name, step.run);
    },
  });
}

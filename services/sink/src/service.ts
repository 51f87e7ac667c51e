import { createRedactor } from '@kaudit/redaction';
import {
  createKafka,
  createLiveness,
  createLogger,
  type Liveness,
  type Logger,
  type ShutdownStep,
  verifyKafkaSecurity,
} from '@kaudit/service-kit';
import { createApp } from './app';
import { createAuthenticator, createTokenStore } from './auth';
import { insecureWarnings, type SinkConfig } from './config';
import { createDelivery, type Delivery } from './delivery';
import { createEventHubsBridge, type EventHubsBridge } from './event-hubs-bridge';
import { createSinkMetrics, type SinkMetrics } from './metrics';
import { createKafkaSender, type Sender } from './producer';
import { type SinkServer, startSinkServer } from './server';
import { createJwksStore } from './source-auth';
import { openSpool, type Spool } from './spool';

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
  const kafka = createKafka({
    clientId: 'kaudit-sink',
    brokers: config.kafkaBrokers,
    security: config.kafkaSecurity,
    logger,
    // Connection attempts fail fast: the producer's own loop retries, and the spool covers the gap.
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 },
  });
  // A refused password or CA stops the start here; an unreachable Kafka does not (events spool).
  await verifyKafkaSecurity(kafka, config.kafkaSecurity);
  const hub = config.eventHub
    ? createKafka({
        clientId: 'kaudit-sink-eventhubs',
        brokers: config.eventHub.brokers,
        security: config.eventHub.security,
        logger,
      })
    : undefined;
  // A refused connection string or CA stops the start, as for kaudit's own Kafka (before the spool's lock).
  if (hub && config.eventHub) await verifyKafkaSecurity(hub, config.eventHub.security);
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
  const { sources } = config;
  const firehoseKeys = sources.firehoseAccessKeyFile
    ? createTokenStore(sources.firehoseAccessKeyFile, logger, 'Firehose access keys')
    : undefined;
  const pubsubTokens = sources.pubsubTokenFile
    ? createTokenStore(sources.pubsubTokenFile, logger, 'Pub/Sub URL tokens')
    : undefined;
  const jwks = sources.pubsubJwksFile ? createJwksStore(sources.pubsubJwksFile, logger) : undefined;
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
    sources: {
      firehoseKeys: firehoseKeys?.current,
      pubsub:
        jwks || pubsubTokens
          ? {
              jwks: jwks?.current,
              audience: sources.pubsubAudience,
              serviceAccount: sources.pubsubServiceAccount,
              urlTokens: pubsubTokens?.current,
            }
          : undefined,
    },
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
      ...(firehoseKeys && sources.firehoseAccessKeyFile
        ? [{ file: sources.firehoseAccessKeyFile, onChange: firehoseKeys.reload }]
        : []),
      ...(pubsubTokens && sources.pubsubTokenFile
        ? [{ file: sources.pubsubTokenFile, onChange: pubsubTokens.reload }]
        : []),
      ...(jwks && sources.pubsubJwksFile ? [{ file: sources.pubsubJwksFile, onChange: jwks.reload }] : []),
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

export interface SinkService {
  logger: Logger;
  liveness: Liveness;
  /** Filled by start(): finish in-flight requests, stop the drainer, flush the producer, close the spool. */
  steps: ShutdownStep[];
  timeoutMs: number;
  start(): Promise<void>;
}

/**
 * What main.ts runs: logger and liveness, then startSink (above) on start(). Tests and the benchmark
 * call startSink themselves.
 */
export function createSinkService(
  config: SinkConfig,
  deps: { logger?: Logger; liveness?: Liveness } = {},
): SinkService {
  const logger = deps.logger ?? createLogger({ service: 'sink', level: config.logLevel });
  const liveness = deps.liveness ?? createLiveness({ logger });
  const steps: ShutdownStep[] = [];
  return {
    logger,
    liveness,
    steps,
    timeoutMs: 30_000,
    async start() {
      for (const warning of insecureWarnings(config)) logger.warn({ SINK_INSECURE_DEV: true }, warning);
      const sink = await startSink(config, logger, { liveness });
      steps.push(...sink.steps);
    },
  };
}

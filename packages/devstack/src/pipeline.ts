import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_TOPICS } from '@kaudit/audit-schema';
import { applyResources, createEsClient, DEFAULT_NAMESPACE, dataStreamNames } from '@kaudit/es-resources';
import {
  ConfigError,
  createKafka,
  createLogger,
  createStartup,
  ensureTopics,
  type KafkaSecurity,
  parseKafkaSecurity,
} from '@kaudit/service-kit';
import { type DevCerts, ensureDevCerts } from '@kaudit/testkit';
import { reservePort } from './ports';
import { pipelineTopicSpecs } from './provision';
import { type ServiceProcess, spawnService, waitUntilReady } from './service-process';
import { type SlackStandin, startSlackStandin } from './slack-standin';
import { runStackScript, type StackAddresses, stackAddresses, stackReachable } from './stack';

export const SERVICE_NAMES = ['sink', 'detector', 'indexer', 'alerter'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];
type PortName = ServiceName | 'slack';

export interface PipelineTopics {
  events: string;
  alerts: string;
  dlq: string;
  detectorState: string;
  alerterDelivered: string;
}

export interface PipelineOptions {
  /** The checkout (default: three levels above this file: packages/devstack/dist). */
  rootDir?: string;
  /** Certificates, logs, spool, generated config (default <root>/.kaudit, gitignored). */
  stateDir?: string;
  addresses?: StackAddresses;
  /** Run test/stack/stack.sh up when Kafka or Elasticsearch does not answer (default true). */
  startStack?: boolean;
  topics?: Partial<PipelineTopics>;
  /** Elasticsearch data stream namespace (logs-kubernetes.audit_logs-kaudit_<namespace>, logs-kaudit.findings-<namespace>). */
  esNamespace?: string;
  /** Prefix of consumer group ids, the detector's transactional id and the spool directory. */
  idPrefix?: string;
  /** Cluster name the sink gives events whose URL names none. */
  clusterName?: string;
  /** Ports to listen on; 0 = any free port. Defaults: sink 8443, 9301-9303, Slack stand-in 9310. */
  ports?: Partial<Record<PortName, number>>;
  detectionPolicyFile?: string;
  /** Extra environment per service, applied last. */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  logLevel?: string;
  readyTimeoutMs?: number;
  /** Create the topics and Elasticsearch resources before the services start (default true). */
  provision?: boolean;
  /** Progress messages (default: stderr). */
  log?: (text: string) => void;
}

export interface Pipeline {
  urls: {
    /** POST audit events here (HTTPS, mTLS and/or bearer token). */
    sink: string;
    slack: string;
    elasticsearch: string;
    kafka: string;
  } & Record<Exclude<ServiceName, 'sink'>, string>;
  ports: Record<PortName, number>;
  /** TLS/SASL of the Kafka the pipeline runs on (from KAFKA_SSL_* / KAFKA_SASL_*), for clients beside it. */
  kafkaSecurity: KafkaSecurity;
  topics: PipelineTopics;
  esNamespace: string;
  dataStreams: { events: string; findings: string };
  groupIds: Record<Exclude<ServiceName, 'sink'>, string>;
  clusterName: string;
  certs: DevCerts;
  services: ServiceProcess[];
  slack: SlackStandin;
  logsDir: string;
  stackStarted: boolean;
  /**
   * One more process of a service with its pipeline environment plus `env` (a restart after a crash, a
   * second detector in the group), logging to <logs>/<name><suffix>.log; stop() ends it too. Resolves
   * once it answers /readyz at `readyUrl` (default: the service's own port, for a restart).
   */
  launch(
    name: ServiceName,
    options?: { env?: Record<string, string>; logSuffix?: string; readyUrl?: string; waitReady?: boolean },
  ): Promise<ServiceProcess>;
  stop(): Promise<void>;
}

const DEFAULT_PORTS: Record<PortName, number> = {
  sink: 8443,
  detector: 9301,
  indexer: 9302,
  alerter: 9303,
  slack: 9310,
};

/** Variables a service would otherwise inherit from the caller's shell and silently obey. */
const SERVICE_ENV_PREFIXES =
  /^(KAFKA_|ES_|AUDIT_|SINK_|DETECTOR_|INDEXER_|ALERTER_|SLACK_|SIEM_|KIBANA_|LOG_LEVEL$)/;

export const defaultRootDir = resolve(__dirname, '../../..');

/**
 * A pipeline that shares the stack with others without meeting them: topics `<run>.*`, data streams in
 * namespace `<run>`, consumer groups and transactional ids prefixed `<run>`, any free ports. For the
 * benches, the chaos run and the end-to-end tests.
 */
export function isolatedRun(
  run: string,
): Pick<PipelineOptions, 'idPrefix' | 'esNamespace' | 'topics' | 'ports'> {
  return {
    idPrefix: run,
    esNamespace: run,
    topics: {
      events: `${run}.events`,
      alerts: `${run}.alerts`,
      dlq: `${run}.dlq`,
      detectorState: `${run}.detector-state`,
      alerterDelivered: `${run}.alerter-delivered`,
    },
    ports: { sink: 0, detector: 0, indexer: 0, alerter: 0, slack: 0 },
  };
}

/**
 * The whole pipeline on this machine: the test stack (started only if it is not running), local
 * certificates, topics, the Elasticsearch resources, a Slack stand-in, and the four services each as
 * its own `node services/<name>/dist/main.js` process with a working local configuration. Resolves once
 * every service answers /readyz; stop() ends what it started, and only that.
 */
export async function startPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  const rootDir = options.rootDir ?? defaultRootDir;
  const stateDir = options.stateDir ?? join(rootDir, '.kaudit');
  const logsDir = join(stateDir, 'logs');
  const log = options.log ?? ((text: string) => process.stderr.write(`${text}\n`));
  const addresses = options.addresses ?? stackAddresses();
  const kafkaSecurityEnv = addresses.kafkaSecurityEnv ?? {};
  const parsedSecurity = parseKafkaSecurity(kafkaSecurityEnv);
  if (!parsedSecurity.value) throw new ConfigError(parsedSecurity.problems);
  const kafkaSecurity = parsedSecurity.value;
  const idPrefix = options.idPrefix ?? 'kaudit';
  const esNamespace = options.esNamespace ?? DEFAULT_NAMESPACE;
  const clusterName = options.clusterName ?? 'local';
  const topics: PipelineTopics = {
    events: DEFAULT_TOPICS.events,
    alerts: DEFAULT_TOPICS.alerts,
    dlq: DEFAULT_TOPICS.dlq,
    detectorState: 'k8s-audit.detector-state',
    alerterDelivered: 'k8s-audit.alerter-delivered',
    ...options.topics,
  };
  const groupIds = {
    detector: `${idPrefix}-detector`,
    indexer: `${idPrefix}-indexer`,
    alerter: `${idPrefix}-alerter`,
  };
  mkdirSync(logsDir, { recursive: true });

  const started: { services: ServiceProcess[]; slack?: SlackStandin; stack: boolean } = {
    services: [],
    stack: false,
  };
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await Promise.all(started.services.map((service) => service.stop()));
      await started.slack?.close();
      if (started.stack) {
        log('stopping the test stack (this run started it)');
        await runStackScript(rootDir, 'down', (text) => log(text.trimEnd()));
      }
    })();
    return stopping;
  };

  try {
    if (!(await stackReachable(addresses))) {
      if (options.startStack === false) {
        throw new Error(
          `Kafka ${addresses.kafkaBrokers.join(',')} or Elasticsearch ${addresses.esNode} is not reachable`,
        );
      }
      log('Kafka or Elasticsearch not running: starting the test stack (test/stack/stack.sh up)');
      started.stack = true;
      await runStackScript(rootDir, 'up', (text) => log(text.trimEnd()));
    }

    const certs = await ensureDevCerts(join(stateDir, 'certs'));
    const ca = readFileSync(certs.caCert);
    const wanted = { ...DEFAULT_PORTS, ...options.ports };
    const ports = {} as Record<PortName, number>;
    for (const name of Object.keys(DEFAULT_PORTS) as PortName[])
      ports[name] = await reservePort(wanted[name]);

    // Provisioned once, before any service starts, and waited for until every partition has a leader and
    // the templates are in: the services then find what they need instead of racing to create it. Kafka
    // or Elasticsearch still coming up (just started by stack.sh) is retried within the same deadline.
    const logger = createLogger({ service: 'devstack', level: 'warn' });
    const startup = createStartup({ logger, timeoutMs: options.readyTimeoutMs ?? 120_000 });
    const kafka = createKafka({
      clientId: `${idPrefix}-devstack`,
      brokers: addresses.kafkaBrokers,
      security: kafkaSecurity,
      logger,
    });
    const specs = pipelineTopicSpecs(topics);
    if (options.provision !== false) {
      await startup.step('create the topics', () => ensureTopics(kafka, specs));
      const es = createEsClient({ node: addresses.esNode });
      try {
        await startup.step(
          'apply the Elasticsearch resources',
          () => applyResources(es, { namespace: esNamespace, numberOfReplicas: 0 }),
          { code: 'KAUDIT_ERR_ELASTICSEARCH' },
        );
      } finally {
        await es.close();
      }
      log(`topics ${specs.map((s) => s.topic).join(', ')} and the Elasticsearch resources are ready`);
    }

    started.slack = await startSlackStandin({ port: ports.slack, logFile: join(logsDir, 'slack.log') });
    const routingFile = join(stateDir, `routing.${idPrefix}.yaml`);
    writeFileSync(routingFile, localRouting());

    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(
        (entry): entry is [string, string] => entry[1] !== undefined && !SERVICE_ENV_PREFIXES.test(entry[0]),
      ),
    );
    const common = {
      KAFKA_BROKERS: addresses.kafkaBrokers.join(','),
      ...kafkaSecurityEnv,
      AUDIT_EVENTS_TOPIC: topics.events,
      AUDIT_ALERTS_TOPIC: topics.alerts,
      AUDIT_DLQ_TOPIC: topics.dlq,
      LOG_LEVEL: options.logLevel ?? 'info',
    };
    const env: Record<ServiceName, Record<string, string>> = {
      sink: {
        SINK_PORT: String(ports.sink),
        SINK_HOST: '127.0.0.1',
        SINK_TLS_CERT_FILE: certs.serverCert,
        SINK_TLS_KEY_FILE: certs.serverKey,
        SINK_CLIENT_CA_FILE: certs.caCert,
        SINK_AUTH_TOKEN_FILE: certs.tokenFile,
        SINK_CLUSTER_NAME: clusterName,
        SINK_SPOOL_DIR: join(stateDir, 'spool', idPrefix),
        SINK_REDACTION_POLICY_FILE: join(rootDir, 'policies/redaction.yaml'),
      },
      detector: {
        DETECTOR_PORT: String(ports.detector),
        DETECTOR_POLICY_FILE: options.detectionPolicyFile ?? join(rootDir, 'policies/detection.yaml'),
        DETECTOR_STATE_TOPIC: topics.detectorState,
        DETECTOR_GROUP_ID: groupIds.detector,
        DETECTOR_INSTANCE_ID: `${idPrefix}-detector-0`,
      },
      indexer: {
        ES_NODE: addresses.esNode,
        ES_DATA_STREAM_NAMESPACE: esNamespace,
        ES_NUMBER_OF_REPLICAS: '0',
        INDEXER_GROUP_ID: groupIds.indexer,
        INDEXER_PORT: String(ports.indexer),
        INDEXER_HOST: '127.0.0.1',
      },
      alerter: {
        ALERTER_PORT: String(ports.alerter),
        ALERTER_ROUTING_FILE: routingFile,
        ALERTER_GROUP_ID: groupIds.alerter,
        ALERTER_DELIVERED_TOPIC: topics.alerterDelivered,
        SLACK_WEBHOOK_URL: started.slack.url,
        KIBANA_BASE_URL: 'http://localhost:5601',
      },
    };
    const readyUrl: Record<ServiceName, string> = {
      sink: `https://127.0.0.1:${ports.sink}/readyz`,
      detector: `http://127.0.0.1:${ports.detector}/readyz`,
      indexer: `http://127.0.0.1:${ports.indexer}/readyz`,
      alerter: `http://127.0.0.1:${ports.alerter}/readyz`,
    };

    const spawnOne = (
      name: ServiceName,
      extra: Record<string, string> = {},
      logSuffix = '',
      url?: string,
    ) => {
      const service = spawnService({
        name,
        entry: join(rootDir, 'services', name, 'dist/main.js'),
        cwd: rootDir,
        env: { ...inherited, ...common, ...env[name], ...options.serviceEnv?.[name], ...extra },
        logFile: join(logsDir, `${name}${logSuffix}.log`),
        readyUrl: url ?? readyUrl[name],
      });
      started.services.push(service);
      return service;
    };
    for (const name of SERVICE_NAMES) spawnOne(name);
    log(`started ${started.services.map((s) => `${s.name} (pid ${s.pid})`).join(', ')}; waiting for /readyz`);
    const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
    await Promise.all(started.services.map((service) => waitUntilReady(service, readyTimeoutMs, ca)));

    return {
      urls: {
        sink: `https://127.0.0.1:${ports.sink}/audit`,
        detector: `http://127.0.0.1:${ports.detector}`,
        indexer: `http://127.0.0.1:${ports.indexer}`,
        alerter: `http://127.0.0.1:${ports.alerter}`,
        slack: started.slack.url,
        elasticsearch: addresses.esNode,
        kafka: addresses.kafkaBrokers.join(','),
      },
      ports,
      kafkaSecurity,
      topics,
      esNamespace,
      dataStreams: dataStreamNames(esNamespace),
      groupIds,
      clusterName,
      certs,
      services: started.services,
      slack: started.slack,
      logsDir,
      stackStarted: started.stack,
      async launch(name, launchOptions = {}) {
        const service = spawnOne(name, launchOptions.env, launchOptions.logSuffix, launchOptions.readyUrl);
        if (launchOptions.waitReady !== false)
          await waitUntilReady(service, options.readyTimeoutMs ?? 120_000, ca);
        return service;
      },
      stop,
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

/**
 * Routing for the local Slack stand-in: every finding, throttled like the shipped secops-slack route
 * (5 per identity per 10 minutes, the rest as a digest), so what users see locally is what Slack would.
 * The shipped policies/routing.yaml also names a SIEM and Splunk, whose secrets a laptop does not have.
 */
function localRouting(): string {
  return `# Written by pnpm start (packages/devstack): the alerter's routing for the local Slack stand-in.
timezone: Europe/Berlin
defaults:
  timeout: 5s
  retry:
    # As the shipped routing: retried until the destination is back (2 hours), not a number of times.
    # A count of attempts dead-lettered every finding of a Slack outage longer than about 30 s (chaos
    # scenario 6: 140 of 708 in a 15-minute outage). Short delays keep a local run responsive.
    maxElapsed: 2h
    initialDelay: 500ms
    maxDelay: 5s
destinations:
  slack-local:
    type: slack
    urlFrom: { env: SLACK_WEBHOOK_URL }
routes:
  - name: everything-to-local-slack
    destinations: [slack-local]
    throttle:
      maxAlerts: 5
      window: 10m
`;
}

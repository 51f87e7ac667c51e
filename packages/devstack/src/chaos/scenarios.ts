import { sleep } from '@kaudit/common';
import type { Pipeline, ServiceName } from '../pipeline';
import { reservePort } from '../ports';
import type { ChaosServer, ChaosServers } from './servers';
import type { Supervisor } from './supervisor';

export interface ScenarioContext {
  pipeline: Pipeline;
  servers: ChaosServers;
  supervisor: Supervisor;
  /** How long a fault lasts (10 minutes in the documented run; shorter in CI). */
  outageMs: number;
  log: (text: string) => void;
}

export interface Scenario {
  id: number;
  name: string;
  title: string;
  /** Extra environment per service for this scenario's pipeline. */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Before the load starts (more detectors in the group). */
  prepare?(context: ScenarioContext): Promise<void>;
  /** The fault, under load; resolves when the fault has ended (everything it stopped is started again). */
  act(context: ScenarioContext): Promise<void>;
}

const detectorEnv = async (pipeline: Pipeline, n: number) => ({
  DETECTOR_INSTANCE_ID: `${pipeline.groupIds.detector}-${n}`,
  DETECTOR_PORT: String(await reservePort(0)),
});

/** A server away for the outage (stopped as an operator or a node drain would), then back with its data. */
async function outage(server: ChaosServer, outageMs: number, log: (text: string) => void, note = '') {
  log(`stopping ${server.name} for ${outageMs / 1000} s${note}`);
  await server.down();
  await sleep(outageMs);
  await server.up();
}

export const SCENARIOS: Scenario[] = [
  {
    id: 1,
    name: 'kafka-down',
    title: 'Kafka stopped under load, then restarted',
    // Kafka away longer than a transaction may stay open: the coordinator aborts the detector's open
    // transaction when it is back, the detector's own abort fails, and a new producer must take over
    // (transaction.ts). The default 60 s was longer than the CI run's 40 s outage except on a slow day.
    serviceEnv: { detector: { DETECTOR_TRANSACTION_TIMEOUT_MS: '20s' } },
    act: ({ servers, outageMs, log }) => outage(servers.kafka, outageMs, log),
  },
  {
    id: 2,
    name: 'elasticsearch-down',
    title: 'Elasticsearch stopped under load, then restarted',
    act: ({ servers, outageMs, log }) => outage(servers.elasticsearch, outageMs, log),
  },
  {
    id: 3,
    name: 'services-killed',
    title: 'each service SIGKILLed mid-stream and restarted (the sink with a non-empty spool)',
    async act({ servers, supervisor, outageMs, log }) {
      // The sink's spool fills while Kafka is away; the sink dies holding it and drains it when back.
      const spooling = Math.min(30_000, Math.max(10_000, outageMs / 4));
      log(`Kafka away for ${spooling / 1000} s so the sink spools; the sink is killed holding its spool`);
      await servers.kafka.down();
      await sleep(spooling);
      await supervisor.crash('sink');
      await sleep(5000);
      await servers.kafka.up();
      const gap = Math.min(20_000, Math.max(8000, outageMs / 8));
      for (const name of ['detector', 'indexer', 'alerter'] as const) {
        await sleep(gap);
        await supervisor.crash(name);
      }
      await sleep(gap);
    },
  },
  {
    id: 4,
    name: 'detector-rebalance',
    title: 'three detectors in one group: one SIGKILLed, one added under load',
    async prepare({ pipeline, supervisor }) {
      for (const n of [1, 2]) await supervisor.add('detector', await detectorEnv(pipeline, n));
    },
    async act({ pipeline, supervisor, outageMs }) {
      await supervisor.remove('detector', 1);
      await sleep(Math.max(15_000, outageMs / 2));
      await supervisor.add('detector', await detectorEnv(pipeline, 3));
      await sleep(Math.max(15_000, outageMs / 2));
    },
  },
  {
    id: 5,
    name: 'spool-full',
    title: "the sink's spool full while Kafka is down",
    serviceEnv: { sink: { SINK_SPOOL_MAX_BYTES: String(64 * 1024 * 1024) } },
    act: ({ servers, outageMs, log }) => outage(servers.kafka, outageMs, log, ' with a 64 MiB spool'),
  },
  {
    id: 6,
    name: 'slack-500',
    title: 'Slack answering 500, then 200',
    async act({ pipeline, outageMs, log }) {
      log(`Slack answers 500 for ${(outageMs * 1.5) / 1000} s`);
      pipeline.slack.failWith(500);
      await sleep(outageMs * 1.5);
      pipeline.slack.failWith(undefined);
    },
  },
];

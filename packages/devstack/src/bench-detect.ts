import { Client } from '@elastic/elasticsearch';
import { createKafka, createLogger } from '@kaudit/service-kit';
import { createSinkPoster, markSearchable, percentile } from './bench-post';
import { createBenchTraffic } from './bench-traffic';
import type { Pipeline } from './pipeline';

/**
 * Time to detect, for `pnpm bench:e2e`: from a probe request's requestReceivedTimestamp (the wall clock
 * here) to its finding on the alerts topic, searchable in Elasticsearch, and at the Slack stand-in.
 * Two API servers feed one cluster, batched as kube-apiserver's webhook backend batches
 * (--audit-webhook-batch-max-size 400, --audit-webhook-batch-max-wait): a busy one with the background
 * load, whose batches fill in a tenth of a second, and a quiet one that gets the probes (anonymous
 * Secret reads, one identity each) and so holds them for up to the whole batch wait: the worst case.
 */

export interface DetectScenario {
  /** The API server's --audit-webhook-batch-max-wait. */
  batchMaxWaitMs: number;
  /** The detection policy's eventTime.allowedLateness the detector runs with. */
  allowedLateness: string;
}

export interface StageLatency {
  p50: number;
  p99: number;
  n: number;
}

export interface DetectResult extends DetectScenario {
  offeredRate: number;
  achievedRate: number;
  probes: number;
  alerts: StageLatency;
  elasticsearch: StageLatency;
  slack: StageLatency;
}

const BATCH = 400;
const PROBE_PREFIX = 'ttd-probe-';

export async function measureTimeToDetect(
  pipeline: Pipeline,
  scenario: DetectScenario,
  options: { rate: number; probeSeconds: number; tailSeconds: number; log: (text: string) => void },
): Promise<DetectResult> {
  const { post, close } = createSinkPoster(pipeline, 6);
  const now = () => Date.now();
  const busy = createBenchTraffic({
    startMs: now(),
    spacingMs: 0,
    groupingWindowMs: 600_000,
    allowedLatenessMs: 0,
    now,
  });
  const quiet = createBenchTraffic({
    startMs: now(),
    spacingMs: 0,
    groupingWindowMs: 600_000,
    allowedLatenessMs: 0,
    now,
    probePrefix: PROBE_PREFIX,
    nodes: 4,
  });
  const probedAt = new Map<string, number>();
  const seen = { alerts: new Map<string, number>(), elasticsearch: new Map<string, number>() };
  const slackSeen = new Map<string, number>();

  const kafka = createKafka({
    clientId: 'bench-ttd',
    brokers: pipeline.urls.kafka.split(','),
    security: pipeline.kafkaSecurity,
    logger: createLogger({ service: 'bench-ttd', level: 'warn' }),
  });
  const consumer = kafka.consumer({ groupId: `${pipeline.groupIds.detector}-ttd`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: pipeline.topics.alerts, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const at = now();
      const name = (JSON.parse(String(message.value)) as { identity?: { username?: string } }).identity
        ?.username;
      if (name?.startsWith(PROBE_PREFIX) && !seen.alerts.has(name)) seen.alerts.set(name, at);
    },
  });
  const es = new Client({ node: pipeline.urls.elasticsearch });
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const pending = [...probedAt.keys()].filter((id) => !seen.elasticsearch.has(id));
      await markSearchable(es, pipeline.dataStreams.findings, pending, seen.elasticsearch);
      for (const message of pipeline.slack.messages) {
        for (const match of JSON.stringify(message.body).matchAll(/ttd-probe-\d+/g)) {
          if (!slackSeen.has(match[0])) slackSeen.set(match[0], Date.parse(message.receivedAt));
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();

  const started = now();
  const probeUntil = started + options.probeSeconds * 1000;
  const deadline = probeUntil + options.tailSeconds * 1000;
  const inFlight = new Set<Promise<void>>();
  const send = (items: string[]) => {
    const task = post(items)
      .then(() => {
        sent += items.length;
      })
      .catch((error: unknown) => options.log(`post failed: ${String(error)}`))
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
  };
  let sent = 0;
  // The quiet API server: a few requests a second, a probe every 3 s, sent when its batch wait is over.
  let held: string[] = [];
  let second = 0;
  const quietTimer = setInterval(() => {
    const batch = quiet.nextBatch(10, now() < probeUntil && second++ % 3 === 0);
    for (const probe of batch.probes) probedAt.set(probe.identity, probe.at);
    held.push(...batch.items);
  }, 1000);
  const flushTimer = setInterval(() => {
    if (held.length > 0) send(held.splice(0));
  }, scenario.batchMaxWaitMs);
  const intervalMs = (BATCH / options.rate) * 1000;
  for (let i = 0; now() < deadline; i++) {
    const wait = started + i * intervalMs - now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (inFlight.size >= 4) await Promise.race(inFlight);
    send(busy.nextBatch(BATCH, false).items);
    if (now() > probeUntil && probedAt.size > 0 && slackSeen.size >= probedAt.size) break;
  }
  const elapsed = (now() - started) / 1000;
  clearInterval(quietTimer);
  clearInterval(flushTimer);
  held = [];
  await Promise.all(inFlight);
  watching = false;
  await watcher;
  await consumer.disconnect();
  await es.close();
  close();

  const stage = (arrived: Map<string, number>): StageLatency => {
    const latencies = [...probedAt].flatMap(([id, at]) =>
      arrived.has(id) ? [Math.max(0, arrived.get(id)! - at)] : [],
    );
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), n: latencies.length };
  };
  return {
    ...scenario,
    offeredRate: options.rate,
    achievedRate: Math.round(sent / elapsed),
    probes: probedAt.size,
    alerts: stage(seen.alerts),
    elasticsearch: stage(seen.elasticsearch),
    slack: stage(slackSeen),
  };
}

export function detectReport(results: DetectResult[]): string {
  const s = (ms: number) => (Number.isNaN(ms) ? '-' : (ms / 1000).toFixed(1));
  const cell = (l: StageLatency, probes: number) => `${s(l.p50)} / ${s(l.p99)} (${l.n}/${probes})`;
  const rows = results.map(
    (r) =>
      `| ${r.batchMaxWaitMs / 1000} s | ${r.allowedLateness} | ${r.achievedRate} of ${r.offeredRate} | ` +
      `${cell(r.alerts, r.probes)} | ${cell(r.elasticsearch, r.probes)} | ${cell(r.slack, r.probes)} |`,
  );
  return [
    'time to detect, s from the probe request (requestReceivedTimestamp), p50 / p99 (probes seen / sent):',
    '',
    '| batch max wait | allowedLateness | background ev/s | alerts topic | Elasticsearch | Slack stand-in |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

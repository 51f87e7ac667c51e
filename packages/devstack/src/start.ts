import { isAbsolute, relative, sep } from 'node:path';
import { FindingSchema } from '@kaudit/audit-schema';
import { createKafka, createLogger, suppressKafkajsTimeoutWarning } from '@kaudit/service-kit';
import type { Consumer } from 'kafkajs';
import { defaultRootDir, type Pipeline, type PipelineOptions, startPipeline } from './pipeline';

/**
 * `pnpm start`: the whole pipeline on this machine (scripts/start.sh builds first). Prints what runs
 * where and how to send events, then each finding as it reaches the alerts topic; Ctrl-C stops
 * everything it started (the test stack too, when this run started it).
 */
async function main(): Promise<void> {
  suppressKafkajsTimeoutWarning();
  const root = defaultRootDir;
  // Paths as the user types them from the checkout; a KAUDIT_STATE_DIR outside it stays absolute.
  const rel = (path: string) => {
    const shown = relative(root, path) || '.';
    return shown === '..' || shown.startsWith(`..${sep}`) || isAbsolute(shown) ? path : shown;
  };
  let pipeline: Pipeline | undefined;
  let consumer: Consumer | undefined;
  let stopping: string | undefined;

  const shutdown = async (signal: string) => {
    if (stopping) {
      // process.exit runs the exit hook, which kills every service still running.
      process.stdout.write('kaudit: second signal, killing the services now\n');
      process.exit(1);
    }
    stopping = signal;
    if (!pipeline) return; // still starting: stopped as soon as startPipeline returns
    process.stdout.write(`\nkaudit: ${signal}: stopping what this run started...\n`);
    await consumer?.disconnect().catch(() => undefined);
    await pipeline.stop();
    process.stdout.write('kaudit: stopped\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  process.stdout.write(
    'kaudit: starting the local pipeline (Kafka, Elasticsearch, sink, detector, indexer, alerter)\n',
  );
  pipeline = await startPipeline({
    ...startOptionsFromEnv(process.env),
    log: (text) => process.stdout.write(`  ${text}\n`),
  });
  if (stopping) {
    const signal = stopping;
    stopping = undefined;
    return shutdown(signal);
  }

  process.stdout.write(describe(pipeline, rel));
  consumer = await followFindings(pipeline);
  // A service that dies is reported; the others keep running so its log can be read.
  const watch = setInterval(() => {
    for (const service of pipeline.services) {
      const exit = service.exited();
      if (exit && !stopping && pipeline) {
        process.stdout.write(
          `kaudit: ${service.name} exited (${exit.signal ?? `code ${exit.code}`}); see ${rel(service.logFile)}\n`,
        );
        pipeline.services.splice(pipeline.services.indexOf(service), 1);
      }
    }
  }, 1000);
  watch.unref();
}

/**
 * Where `pnpm start` listens and keeps its state, when the defaults are taken: the services' own port
 * variables (SINK_PORT, DETECTOR_PORT, INDEXER_PORT, ALERTER_PORT), KAUDIT_SLACK_STANDIN_PORT, and
 * KAUDIT_STATE_DIR (certificates, spool, logs; default .kaudit). 0 = any free port.
 */
export function startOptionsFromEnv(env: NodeJS.ProcessEnv): Pick<PipelineOptions, 'ports' | 'stateDir'> {
  const names = {
    sink: 'SINK_PORT',
    detector: 'DETECTOR_PORT',
    indexer: 'INDEXER_PORT',
    alerter: 'ALERTER_PORT',
    slack: 'KAUDIT_SLACK_STANDIN_PORT',
  } as const;
  const ports: NonNullable<PipelineOptions['ports']> = {};
  for (const [service, name] of Object.entries(names) as Array<[keyof typeof names, string]>) {
    const value = env[name]?.trim();
    if (!value) continue;
    const port = Number(value);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new Error(`${name}: must be a port, not "${value}"`);
    ports[service] = port;
  }
  return { ports, ...(env.KAUDIT_STATE_DIR?.trim() ? { stateDir: env.KAUDIT_STATE_DIR.trim() } : {}) };
}

function describe(pipeline: Pipeline, rel: (path: string) => string): string {
  const { certs, urls, ports, topics, dataStreams } = pipeline;
  const rows: string[][] = [['service', 'pid', 'listens on', 'log']];
  const listens: Record<string, string> = {
    sink: `${urls.sink} (HTTPS, mTLS or bearer; /healthz /readyz /metrics)`,
    detector: `${urls.detector} (/healthz /readyz /metrics)`,
    indexer: `${urls.indexer} (/healthz /readyz /metrics)`,
    alerter: `${urls.alerter} (/healthz /readyz /metrics)`,
  };
  for (const service of pipeline.services) {
    rows.push([service.name, String(service.pid), listens[service.name] ?? '', rel(service.logFile)]);
  }
  rows.push(['slack stand-in', String(process.pid), urls.slack, rel(`${pipeline.logsDir}/slack.log`)]);
  rows.push(['kafka', '-', urls.kafka, `topics ${topics.events}, ${topics.alerts}, ${topics.dlq}`]);
  rows.push([
    'elasticsearch',
    '-',
    urls.elasticsearch,
    `data streams ${dataStreams.events}, ${dataStreams.findings}`,
  ]);
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const table = rows.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd(),
  );

  const send = [
    // Not `pnpm kaudit`: this works in any shell of a fresh machine, without the toolchain on PATH.
    'bash scripts/kaudit.sh send examples/audit-week.jsonl',
    `--to ${urls.sink}`,
    `--cert ${rel(certs.clientCert)} --key ${rel(certs.clientKey)} --cacert ${rel(certs.caCert)}`,
  ].join(' \\\n    ');
  return `
${table.join('\n')}

Send events (a week of a cluster's audit log with an intrusion on the last night; walkthrough in examples/README.md):
  ${send}
  (or with the bearer token instead of the client certificate: --token-file ${rel(certs.tokenFile)} --cacert ${rel(certs.caCert)})

See the findings:
  here, as they reach the ${topics.alerts} topic
  in Elasticsearch:  curl -s '${urls.elasticsearch}/${dataStreams.findings}/_search?pretty&sort=@timestamp'
  in the Slack stand-in:  tail -f ${rel(`${pipeline.logsDir}/slack.log`)}
Events are in ${dataStreams.events}; the sink's port is ${ports.sink}. Ctrl-C stops everything this run started.

`;
}

/** Prints every new finding on the alerts topic, one line each. */
async function followFindings(pipeline: Pipeline): Promise<Consumer> {
  const logger = createLogger({ service: 'devstack', level: 'warn' });
  const kafka = createKafka({
    clientId: 'kaudit-start',
    brokers: pipeline.urls.kafka.split(','),
    security: pipeline.kafkaSecurity,
    logger,
  });
  const consumer = kafka.consumer({ groupId: `kaudit-start-${process.pid}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: pipeline.topics.alerts, fromBeginning: false });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      process.stdout.write(findingLines(message.value, `${topic}/${partition}@${message.offset}`));
    },
  });
  return consumer;
}

/**
 * What `pnpm start` prints for one message of the alerts topic. Anything else on the topic (a message
 * that is not JSON, or not a finding) gets one line and is skipped: a throw here would stop the
 * follower for the rest of the run.
 */
export function findingLines(value: Buffer | null, where: string): string {
  if (!value) return `skipped  ${where}: no value\n`;
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch {
    return `skipped  ${where}: not JSON\n`;
  }
  const parsed = FindingSchema.safeParse(raw);
  if (!parsed.success) return `skipped  ${where}: not a finding\n`;
  const f = parsed.data;
  // A later revision of a finding already shown (ADR 0010: more evidence joined it), not a new one.
  const label = (f.revision ?? 1) > 1 ? 'update ' : 'finding';
  return `${label}  ${f.severity.padEnd(8)} ${f.rule.padEnd(27)} ${f.identity.username}${f.sourceIP ? ` from ${f.sourceIP}` : ''}\n         ${f.summary}\n`;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`kaudit start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}

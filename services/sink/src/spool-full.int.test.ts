import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKafka, createLogger, ensureTopics } from '@kaudit/service-kit';
import { buildEvent, stackEnv, uniqueName, waitFor } from '@kaudit/testkit';
import { closedPort, insecureSinkEnv, postAudit } from '../test/helpers';
import { loadSinkConfig } from './config';
import { type RunningSink, startSink } from './service';

/**
 * A full spool under a burst (issue 10, item 4): Kafka unreachable (a sink whose KAFKA_BROKERS is a
 * port nobody listens on) until the spool is full, then 50 clients that ignore Retry-After. Refusals
 * must not read bodies (bytes read from the sockets, CPU per refusal), the segment files must stay
 * within SINK_SPOOL_MAX_BYTES (stat), and once Kafka is back (the same spool directory, a sink on the
 * real broker) the drain rate under that burst must stay close to the drain rate without it.
 * The burst runs in a child process, as an API server would: the sink's process does only the sink's work.
 */
const { kafkaBrokers } = stackEnv();
const logger = createLogger({
  service: 'sink-spool-full-test',
  level: (process.env.TEST_LOG_LEVEL as 'silent' | undefined) ?? 'silent',
});
const MiB = 1024 * 1024;
const SPOOL_MAX_BYTES = 48 * MiB;
const EVENTS_PER_BATCH = 400;

/** Clients that post the body again as soon as they are answered (Retry-After ignored); stats on stdout. */
const BURST_CLIENT = `
const http = require('node:http');
const body = require('node:fs').readFileSync(process.argv[3]);
const [port, clients, perClient, token] = [process.argv[1], Number(process.argv[2]), Number(process.argv[4]), process.argv[5]];
const headers = { 'Content-Type': 'application/json', 'Content-Length': body.length };
if (token) headers.Authorization = 'Bearer ' + token;
const stats = { status: {}, retryAfter: 0, errors: {}, requests: 0 };
let stopping = false;
process.stdin.on('data', () => { stopping = true; });
process.stdin.on('end', () => { stopping = true; });
const post = () => new Promise((resolve) => {
  let done = false;
  const finish = () => { if (!done) { done = true; resolve(); } };
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/audit', agent: false, headers }, (res) => {
    stats.status[res.statusCode] = (stats.status[res.statusCode] || 0) + 1;
    if (res.headers['retry-after']) stats.retryAfter += 1;
    res.resume();
    res.on('end', finish);
    res.on('error', finish);
  });
  // A refused request is closed while its body is still being written (EPIPE/ECONNRESET after the answer).
  req.on('error', (err) => { if (!done) stats.errors[err.code] = (stats.errors[err.code] || 0) + 1; finish(); });
  req.end(body);
});
const client = async () => {
  for (let n = 0; perClient === 0 ? !stopping : n < perClient; n++) { stats.requests += 1; await post(); }
};
Promise.all(Array.from({ length: clients }, client)).then(() => {
  const cpu = process.cpuUsage();
  stats.cpuMs = Math.round((cpu.user + cpu.system) / 1000);
  process.stdout.write(JSON.stringify(stats));
  process.exit(0);
});
`;

interface BurstStats {
  status: Record<string, number>;
  retryAfter: number;
  errors: Record<string, number>;
  requests: number;
  cpuMs: number;
}

function startBurst(port: number, bodyFile: string, clients: number, perClient: number, token = '') {
  const child = spawn(
    process.execPath,
    ['-e', BURST_CLIENT, String(port), String(clients), bodyFile, String(perClient), token],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  const done = new Promise<BurstStats>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as BurstStats) : reject(new Error(`burst exited ${code}`)),
    );
  });
  return {
    done,
    stop: () => {
      child.stdin.end();
      return done;
    },
  };
}

describe('sink > full spool under a burst (real Kafka)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sink-spool-full-'));
  const spoolDir = join(dir, 'spool');
  const bodyFile = join(dir, 'batch.json');
  const tokenFile = join(dir, 'tokens');
  const TOKEN = 'tok-spool-full-0123456789';
  const eventsTopic = uniqueName('it-sink-full');
  const dlqTopic = uniqueName('it-sink-full-dlq');
  const sinks: RunningSink[] = [];
  const socketBytesRead = { total: 0 };
  // 400 events of ~2.5 KB: a 1 MiB batch, as an API server sends at RequestResponse level.
  const body = JSON.stringify({
    kind: 'EventList',
    items: Array.from({ length: EVENTS_PER_BATCH }, (_, i) =>
      buildEvent({ annotations: { seq: String(i), note: 'x'.repeat(2200) } }),
    ),
  });

  const start = async (brokers: string) => {
    const env = {
      ...insecureSinkEnv({ brokers, eventsTopic, dlqTopic, spoolDir, cluster: 'full' }),
      SINK_AUTH_TOKEN_FILE: tokenFile,
    };
    const sink = await startSink(
      loadSinkConfig({ ...env, SINK_SPOOL_MAX_BYTES: String(SPOOL_MAX_BYTES) }),
      logger,
    );
    sink.server.server.on('connection', (socket) =>
      socket.on('close', () => {
        socketBytesRead.total += socket.bytesRead;
      }),
    );
    sinks.push(sink);
    return sink;
  };
  const stop = async (sink: RunningSink) => {
    await sink.stop();
    sinks.splice(sinks.indexOf(sink), 1);
  };

  const onDisk = () =>
    readdirSync(spoolDir)
      .filter((f) => f.endsWith('.log'))
      .reduce((sum, f) => sum + statSync(join(spoolDir, f)).size, 0);
  const counter = async (sink: RunningSink, metric: 'requests' | 'sent', label: string, value: string) => {
    const found = (await sink.metrics[metric].get()).values.find(
      (v) => String((v.labels as Record<string, string | number>)[label]) === value,
    );
    return found?.value ?? 0;
  };

  /** Posts batches one after another until the spool refuses one; returns the events it took. */
  const fill = async (sink: RunningSink) => {
    let events = 0;
    for (;;) {
      const answer = await postAudit({ port: sink.port, body, token: TOKEN });
      if (answer.status === 503) return events;
      expect(answer.status).toBe(200);
      events += answer.body.accepted as number;
      expect(onDisk()).toBeLessThanOrEqual(SPOOL_MAX_BYTES);
    }
  };

  /**
   * From the first drained batch until Kafka has the `events` that were spooled: drained events/s, and
   * events/s the sink took in meanwhile (admitted requests, spooled behind). Polled: for the figures.
   */
  const drainRate = async (sink: RunningSink, events: number) => {
    const sent = () => counter(sink, 'sent', 'topic', eventsTopic);
    const accepted = async () => (await sink.metrics.accepted.get()).values[0]?.value ?? 0;
    let first = await sent();
    while (first === 0) {
      await tick(5);
      first = await sent();
    }
    const [started, acceptedBefore, cpuBefore] = [performance.now(), await accepted(), process.cpuUsage()];
    while ((await sent()) < events) await tick(10);
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    return {
      drained: (events - first) / seconds,
      taken: ((await accepted()) - acceptedBefore) / seconds,
      sinkCpuShare: (cpu.user + cpu.system) / 1e6 / seconds,
    };
  };

  beforeAll(async () => {
    writeFileSync(bodyFile, body);
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const kafka = createKafka({ clientId: 'sink-spool-full-test', brokers: kafkaBrokers, logger });
    await ensureTopics(kafka, [{ topic: eventsTopic, numPartitions: 3 }, { topic: dlqTopic }]);
  });

  afterAll(async () => {
    for (const sink of [...sinks]) await sink.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses without reading bodies, stays within its bound on disk, and drains as fast under the burst', async () => {
    const down = `127.0.0.1:${await closedPort()}`;
    const figures: Record<string, number | string> = {
      machine: `${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}`,
      bodyBytes: body.length,
    };

    // 1. Kafka unreachable: the spool fills.
    const offline = await start(down);
    const fillCpu = process.cpuUsage();
    const spooled = await fill(offline);
    const fillUsage = process.cpuUsage(fillCpu);
    figures.cpuMsPerAcceptedBatch = Number(
      ((fillUsage.user + fillUsage.system) / 1000 / (spooled / EVENTS_PER_BATCH)).toFixed(1),
    );
    expect(spooled).toBeGreaterThan(0);
    figures.spooledEvents = spooled;

    // 2. 50 clients x 10 requests against the full spool.
    const bytesBefore = socketBytesRead.total;
    const refusedBefore = await counter(offline, 'requests', 'status', '503');
    const cpuBefore = process.cpuUsage();
    let peak = onDisk();
    const sampler = setInterval(() => {
      peak = Math.max(peak, onDisk());
    }, 20);
    const stats = await startBurst(offline.port, bodyFile, 50, 10, TOKEN).done;
    clearInterval(sampler);
    await stop(offline); // closes every connection, so their bytes are counted
    const cpu = process.cpuUsage(cpuBefore);
    const refused = (await counter(offline, 'requests', 'status', '503')) - refusedBefore;
    const bytesPerRefusal = (socketBytesRead.total - bytesBefore) / refused;
    figures.bytesReadPerRefusal = Math.round(bytesPerRefusal);
    figures.cpuMsPerRefusal = Number(((cpu.user + cpu.system) / 1000 / refused).toFixed(3));
    figures.cpuMsPerRefusalKernel = Number((cpu.system / 1000 / refused).toFixed(3));
    expect(refused).toBe(500);
    // Every answer is 503 + Retry-After. A client still writing its body when the connection closes can
    // see a reset before it reads the answer (as with Node's own close after an early answer); the API
    // server retries a reset like a 503. How many do depends on the machine's load, not on the sink (20
    // of 500 on a busy 2-core machine, 53 with a chaos run beside it), so the test asserts that every
    // client got one of the two, and that most read the 503; the share is a figure, not a bound.
    const answered = stats.status['503'] ?? 0;
    const resets = Object.values(stats.errors).reduce((a, b) => a + b, 0);
    expect(Object.keys(stats.status)).toEqual(['503']);
    expect(stats.retryAfter).toBe(answered);
    expect(answered + resets).toBe(500);
    expect(Object.keys(stats.errors).filter((code) => code !== 'ECONNRESET' && code !== 'EPIPE')).toEqual([]);
    expect(answered).toBeGreaterThan(250);
    figures.refusalsSeenAsResets = 500 - answered;
    // The first read from the socket (headers and the start of the body: Node reads 64 KiB at a time), not the 1.1 MB body.
    expect(bytesPerRefusal).toBeLessThanOrEqual(128 * 1024);
    expect(Math.max(peak, onDisk())).toBeLessThanOrEqual(SPOOL_MAX_BYTES);

    // 3. Kafka back, no load: the drain rate.
    const quiet = await start(kafkaBrokers.join(','));
    const quietDrain = await drainRate(quiet, spooled);
    const quietRate = quietDrain.drained;
    figures.sinkCoresQuiet = Number(quietDrain.sinkCpuShare.toFixed(2));
    await waitFor('the spool to drain', async () => quiet.spool.isEmpty() || undefined, 60_000);
    await stop(quiet);
    figures.drainEventsPerSecondQuiet = Math.round(quietRate);

    // 4. Full again, then Kafka back under 50 clients that retry at once.
    const again = await start(down);
    const respooled = await fill(again);
    await stop(again);
    const loaded = await start(kafkaBrokers.join(','));
    const burst = startBurst(loaded.port, bodyFile, 50, 0, TOKEN);
    let loadedRate: Awaited<ReturnType<typeof drainRate>>;
    let burstStats: BurstStats;
    try {
      loadedRate = await drainRate(loaded, respooled);
    } finally {
      burstStats = await burst.stop();
    }
    figures.drainEventsPerSecondUnderBurst = Math.round(loadedRate.drained);
    figures.takenEventsPerSecondUnderBurst = Math.round(loadedRate.taken);
    figures.sinkCoresUnderBurst = Number(loadedRate.sinkCpuShare.toFixed(2));
    figures.burstClientCpuMs = burstStats.cpuMs;
    figures.burstAnswers = JSON.stringify(burstStats.status);
    // Whatever the burst got in is delivered too, and the disk bound held throughout.
    const acceptedByBurst = (burstStats.status['200'] ?? 0) * EVENTS_PER_BATCH;
    await waitFor(
      'every acknowledged event sent',
      async () =>
        (await counter(loaded, 'sent', 'topic', eventsTopic)) >= respooled + acceptedByBurst || undefined,
      120_000,
    );
    expect(onDisk()).toBeLessThanOrEqual(SPOOL_MAX_BYTES);
    await waitFor('the spool to drain', async () => loaded.spool.isEmpty() || undefined, 60_000);
    await stop(loaded);

    // 5. Full again, then Kafka back under 50 clients without credentials: every request is refused
    // before its body (401), none adds work, so the drain rate shows what refusals alone cost it.
    const third = await start(down);
    const thirdSpooled = await fill(third);
    await stop(third);
    const refusing = await start(kafkaBrokers.join(','));
    const flood = startBurst(refusing.port, bodyFile, 50, 0);
    let refusingRate: Awaited<ReturnType<typeof drainRate>>;
    let floodStats: BurstStats;
    try {
      refusingRate = await drainRate(refusing, thirdSpooled);
    } finally {
      floodStats = await flood.stop();
    }
    figures.drainEventsPerSecondUnderRefusedBurst = Math.round(refusingRate.drained);
    figures.refusedBurstAnswers = JSON.stringify(floodStats.status);
    expect(Object.keys(floodStats.status)).toEqual(['401']);
    process.stdout.write(`sink spool-full figures: ${JSON.stringify(figures)}\n`);
    // Under the 503 burst the sink also takes in what the drain makes room for: its work rate (drained
    // and taken) is what refusals must not eat; under the 401 flood there is only the drain. The bounds
    // are loose because the phases run seconds apart on a shared 2-core machine whose load swings
    // (figures in the README); the defect they guard against was a 30-fold drop, to 173 events/s.
    expect(loadedRate.drained + loadedRate.taken).toBeGreaterThan(quietRate / 10);
    expect(refusingRate.drained).toBeGreaterThan(quietRate / 10);
  }, 300_000);
});

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

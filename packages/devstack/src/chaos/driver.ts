import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { backoffDelayMs, parseRetryAfterMs, sleep } from '@kaudit/common';
import type { DevCerts } from '@kaudit/testkit';
import { createBenchTraffic, type Probe } from '../bench-traffic';

/**
 * API-server-shaped traffic for the chaos run: batches of 400 at a steady rate, each retried until the
 * sink answers 2xx (as `kaudit send` does; the API server would give up after its retry window, which
 * is what the counts are for). Every event's auditID is known, so the end of a run can check each
 * acknowledged one in Elasticsearch. Probes (one anonymous Secret read per probe identity) must each
 * produce exactly one finding.
 */
export interface DriverOptions {
  sinkUrl: string;
  certs: DevCerts;
  /** Events per second offered. */
  rate: number;
  batchSize?: number;
  /** A probe in every n-th batch. */
  probeEvery?: number;
  /** Batches in flight at most (the API server sends one at a time per webhook; several sinks, several). */
  inFlight?: number;
  /** The detection policy's window and lateness, to know when a probe's window has closed. */
  groupingWindowMs: number;
  allowedLatenessMs: number;
  /** Event time of the first event. */
  startMs?: number;
}

export interface DriverCounts {
  /** Batches and events answered 2xx. */
  ackedBatches: number;
  ackedEvents: number;
  /** Answers that were not 2xx, by status (0: no answer), each retried. */
  refusals: Record<string, number>;
  /** Events in batches answered 503 at least once (a full spool; counted once per batch). */
  refused503Events: number;
  /** Probes sent in acknowledged batches. */
  probes: number;
}

export interface Driver {
  /** Sends at the rate until stop(); resolves when every batch sent is acknowledged. */
  run(): Promise<void>;
  /** Stops offering new batches; run() resolves once those in flight are acknowledged. */
  stop(): void;
  /** Sends `batches` more batches of quiet traffic, acknowledged, e.g. to move event time past every window. */
  tail(batches: number): Promise<void>;
  counts(): DriverCounts;
  /** auditIDs of every acknowledged event. */
  acked(): string[];
  probes(): Probe[];
}

const AUDIT_ID = /"auditID":"([^"]+)"/;

export function createDriver(options: DriverOptions): Driver {
  const batchSize = options.batchSize ?? 400;
  const probeEvery = options.probeEvery ?? 5;
  const inFlightMax = options.inFlight ?? 4;
  const traffic = createBenchTraffic({
    startMs: options.startMs ?? Date.UTC(2026, 2, 2, 8, 0, 0),
    spacingMs: 250,
    groupingWindowMs: options.groupingWindowMs,
    allowedLatenessMs: options.allowedLatenessMs,
  });
  const agent = new Agent({
    keepAlive: true,
    maxSockets: inFlightMax,
    cert: readFileSync(options.certs.clientCert),
    key: readFileSync(options.certs.clientKey),
    ca: readFileSync(options.certs.caCert),
  });
  const url = new URL(options.sinkUrl);
  const acked: string[] = [];
  const probes: Probe[] = [];
  const counts: DriverCounts = {
    ackedBatches: 0,
    ackedEvents: 0,
    refusals: {},
    refused503Events: 0,
    probes: 0,
  };
  let running = false;
  let batchIndex = 0;

  const post = (body: string) =>
    new Promise<{ status: number; retryAfter?: string }>((resolve) => {
      const req = request(
        url,
        { method: 'POST', agent, timeout: 60_000, headers: { 'Content-Type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () => {
            const retryAfter = res.headers['retry-after'];
            resolve({ status: res.statusCode ?? 0, ...(retryAfter ? { retryAfter } : {}) });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve({ status: 0 }));
      req.end(body);
    });

  /** One batch, re-sent until a 2xx: the sink's promise is that a 2xx means durable. */
  const deliver = async (withProbe: boolean) => {
    const batch = traffic.nextBatch(batchSize, withProbe);
    const body = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[${batch.items.join(',')}]}`;
    let was503 = false;
    for (let attempt = 0; ; attempt++) {
      const answer = await post(body);
      if (answer.status >= 200 && answer.status < 300) break;
      counts.refusals[answer.status] = (counts.refusals[answer.status] ?? 0) + 1;
      if (answer.status === 503 && !was503) {
        was503 = true;
        counts.refused503Events += batch.items.length;
      }
      const hinted = answer.retryAfter ? parseRetryAfterMs(answer.retryAfter) : undefined;
      await sleep(
        Math.min(hinted ?? backoffDelayMs(attempt, { initialDelayMs: 500, maxDelayMs: 8000 }), 10_000),
      );
    }
    counts.ackedBatches += 1;
    counts.ackedEvents += batch.items.length;
    for (const item of batch.items) {
      const id = AUDIT_ID.exec(item)?.[1];
      if (id) acked.push(id);
    }
    probes.push(...batch.probes);
    counts.probes += batch.probes.length;
  };

  const inFlight = new Set<Promise<void>>();
  const send = async (withProbe: boolean) => {
    while (inFlight.size >= inFlightMax) await Promise.race(inFlight);
    const task: Promise<void> = deliver(withProbe).finally(() => inFlight.delete(task));
    inFlight.add(task);
  };

  return {
    async run() {
      running = true;
      const started = Date.now();
      const intervalMs = (batchSize / options.rate) * 1000;
      let sent = 0;
      while (running) {
        const wait = started + sent * intervalMs - Date.now();
        if (wait > 0) await sleep(wait);
        if (!running) break;
        await send(batchIndex % probeEvery === 0);
        batchIndex += 1;
        sent += 1;
      }
      await Promise.all(inFlight);
    },
    stop() {
      running = false;
    },
    async tail(batches) {
      for (let i = 0; i < batches; i++) await send(false);
      await Promise.all(inFlight);
    },
    counts: () => ({ ...counts, refusals: { ...counts.refusals } }),
    acked: () => acked,
    probes: () => probes,
  };
}

import { type Finding, FindingSchema } from '@kaudit/audit-schema';
import {
  buildDeadLetter,
  createOffsetTracker,
  createStartup,
  DEFAULT_STARTUP_TIMEOUT_MS,
  deadLetterMessage,
  ensureTopics,
  type Liveness,
  type Logger,
  retry,
  type Startup,
  sleep,
  type TrackedOffset,
} from '@kaudit/service-kit';
import type { Consumer, EachMessagePayload, Kafka, Producer } from 'kafkajs';
import { type Alert, alertBody, digestAlert, findingAlert } from './alert';
import { createDeliveredStore, type DeliveredStore } from './delivered-store';
import { createDeliveryQueue, type DeliveryQueue } from './delivery-queue';
import type { Destination } from './destinations';
import { createEventClock } from './event-clock';
import type { AlerterMetrics } from './metrics';
import { createRouter, type Route, type RoutingPolicy } from './routing';
import { createThrottle } from './throttle';

export interface AlerterOptions {
  alertsTopic: string;
  dlqTopic: string;
  deliveredTopic: string;
  groupId: string;
  /** A new consumer group starts at the oldest finding still on the topic (true) or at new ones. */
  fromBeginning: boolean;
  /**
   * Findings held in open throttle windows; reading pauses at this many (until digests release them).
   * Deliveries waiting on a destination do not count: each destination has its own maxQueued.
   */
  maxHeld: number;
  /** Per destination: deliveries waiting or in progress; beyond it a delivery is dead-lettered at once. */
  maxQueued: number;
  commitIntervalMs: number;
  throttleFlushIntervalMs: number;
  /** A window's digest waits this long after the window ended for late findings. */
  throttleGraceMs: number;
  dedupMaxEntries: number;
  dedupRetentionMs: number;
  dedupLoadTimeoutMs: number;
}

export interface AlerterDeps {
  kafka: Kafka;
  logger: Logger;
  metrics: AlerterMetrics;
  routing: RoutingPolicy;
  destinations: Destination[];
  options: AlerterOptions;
  now?: () => number;
  /** Jitter source, injected by tests. */
  random?: () => number;
  /**
   * Writes that must reach Kafka (outcome records, dead letters) are retried until they succeed or the
   * alerter stops; after `retries` failed attempts the alerter reports not ready while it keeps trying.
   */
  writeRetry?: { retries: number; initialDelayMs: number; maxDelayMs: number };
  /** Retries start-up steps against a broker still coming up (default: KAFKA_STARTUP_TIMEOUT's 2 min). */
  startup?: Startup;
  /** The crash policy: a consumer crash kafkajs will not restart makes the process dead (liveness.ts). */
  liveness?: Liveness;
}

/** Counts the outcomes one Kafka message waits for; acknowledges it when the last one is in. */
interface MessageTracker {
  add(): void;
  done(): void;
  /** An outcome could not be recorded (or shutdown interrupted it): never acknowledge this message. */
  fail(): void;
}

interface SourceInfo {
  cluster?: string;
  topic?: string;
  partition?: number;
  offset?: string;
}

/**
 * The alerter: reads findings, routes them, deduplicates and throttles them, and hands them to one
 * delivery queue per destination. A message's offset becomes committable only when every destination
 * it was routed to has delivered it or dead-lettered it (and that outcome is on Kafka).
 */
export function createAlerter(deps: AlerterDeps) {
  const { kafka, metrics, options } = deps;
  const logger = deps.logger.child({ component: 'alerter' });
  const now = deps.now ?? Date.now;
  const router = createRouter(deps.routing);
  const routesByName = new Map<string, Route>(deps.routing.routes.map((r) => [r.name, r]));
  const offsets = createOffsetTracker();
  const throttle = createThrottle<MessageTracker>({ graceMs: options.throttleGraceMs });
  const abort = new AbortController();
  const startup =
    deps.startup ?? createStartup({ logger: deps.logger, timeoutMs: DEFAULT_STARTUP_TIMEOUT_MS });
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  const store: DeliveredStore = createDeliveredStore({
    kafka,
    producer,
    topic: options.deliveredTopic,
    groupIdPrefix: `${options.groupId}.delivered`,
    maxEntries: options.dedupMaxEntries,
    retentionMs: options.dedupRetentionMs,
    loadTimeoutMs: options.dedupLoadTimeoutMs,
    logger: deps.logger,
    startup,
  });
  const queues = new Map<string, DeliveryQueue>(
    deps.destinations.map((d) => [
      d.name,
      createDeliveryQueue(d, {
        logger: deps.logger,
        signal: abort.signal,
        maxQueued: options.maxQueued,
        ...(deps.random ? { random: deps.random } : {}),
        hooks: { onRetry: (destination, reason) => metrics.retried.inc({ destination, reason }) },
      }),
    ]),
  );
  /** (destination/alert id) -> its delivery in progress: a second copy of a finding joins the first. */
  const inflight = new Map<string, Promise<boolean>>();
  let consumer: Consumer | undefined;
  let joined = false;
  let stopping = false;
  /** The consumer crashed for good. */
  let crashed = false;
  /** Writes to Kafka past their first retries (still being retried): not ready meanwhile. */
  let failingWrites = 0;
  const writeRetry = deps.writeRetry ?? { retries: 5, initialDelayMs: 200, maxDelayMs: 30_000 };
  const eventClock = createEventClock({ now });
  let committing = false;
  const timers: NodeJS.Timeout[] = [];

  /**
   * Writes that must reach Kafka before a message is acknowledged. Retried until they succeed: giving
   * up would leave the message unacknowledged, and with it every later offset of its partition, until
   * a restart. After writeRetry.retries failed attempts the alerter reports not ready (an operator and
   * the orchestrator see it) and keeps trying; it is ready again once the write succeeds. Only stopping
   * abandons the write (false): the message is read again after the restart.
   */
  async function persist(stage: string, write: () => Promise<unknown>): Promise<boolean> {
    let failing = false;
    try {
      await retry(write, {
        retries: Number.POSITIVE_INFINITY,
        initialDelayMs: writeRetry.initialDelayMs,
        maxDelayMs: writeRetry.maxDelayMs,
        signal: abort.signal,
        isRetriable: () => true, // a broker outage is the case this is for, whatever kafkajs calls it
        onRetry: (err, attempt, delayMs) => {
          metrics.errors.inc({ stage, type: (err as Error).name ?? 'Error' });
          if (attempt > writeRetry.retries && !failing) {
            failing = true;
            failingWrites += 1;
            logger.error({ err, stage, attempt }, 'cannot write to Kafka; not ready while retrying');
          } else logger.warn({ err, stage, attempt, delayMs }, 'write to Kafka failed, retrying');
        },
      });
      if (failing) logger.info({ stage }, 'write to Kafka succeeded again');
      return true;
    } catch (err) {
      logger.warn({ err, stage }, 'write to Kafka abandoned at shutdown; the message stays unacknowledged');
      return false;
    } finally {
      if (failing) failingWrites -= 1;
    }
  }

  function deadLetter(reason: string, raw: unknown, source: SourceInfo, target?: string, key?: string) {
    const letter = buildDeadLetter({
      source: 'alerter',
      reason,
      at: now(),
      cluster: source.cluster,
      topic: source.topic,
      partition: source.partition,
      offset: source.offset,
      target,
      raw,
    });
    return persist('dead-letter', () =>
      producer.send({
        topic: options.dlqTopic,
        acks: -1,
        messages: [deadLetterMessage(letter, { key: key ?? null })],
      }),
    );
  }

  function trackerFor(handle: TrackedOffset): MessageTracker {
    let remaining = 1; // the guard, released by the caller once every outcome has been added
    let failed = false;
    return {
      add: () => {
        remaining += 1;
      },
      done: () => {
        remaining -= 1;
        if (remaining === 0 && !failed) offsets.ack(handle);
      },
      fail: () => {
        failed = true;
      },
    };
  }

  function settle(tracker: MessageTracker, outcome: Promise<boolean>): void {
    tracker.add();
    void outcome.then((ok) => (ok ? tracker.done() : tracker.fail()));
  }

  /** Resolves true once the destination has an outcome for the alert that is safely on Kafka. */
  function dispatch(destination: string, alert: Alert, source: SourceInfo): Promise<boolean> {
    const key = `${destination}/${alert.id}`;
    const running = inflight.get(key);
    if (running) {
      metrics.deduplicated.inc({ destination });
      return running;
    }
    if (store.get(destination, alert.id) !== undefined) {
      metrics.deduplicated.inc({ destination });
      logger.debug({ destination, alertId: alert.id }, 'already has an outcome, not sent again');
      return Promise.resolve(true);
    }
    const queue = queues.get(destination)!;
    const startedAt = now();
    const delivery = queue
      .push(alert)
      .then(async (outcome) => {
        const seconds = (now() - startedAt) / 1000;
        if (outcome.status === 'aborted') return false;
        if (outcome.status === 'delivered') {
          metrics.delivered.inc({ destination, kind: alert.kind });
          metrics.deliveryDuration.observe({ destination, outcome: 'delivered' }, seconds);
          logger.info(
            { destination, alertId: alert.id, kind: alert.kind, attempts: outcome.attempts },
            'delivered',
          );
          return persist('record', () => store.record(destination, alert.id, 'delivered'));
        }
        metrics.deadLettered.inc({ destination, reason: outcome.cause });
        metrics.deliveryDuration.observe({ destination, outcome: 'dead-lettered' }, seconds);
        logger.error(
          {
            destination,
            alertId: alert.id,
            kind: alert.kind,
            attempts: outcome.attempts,
            reason: outcome.reason,
          },
          'delivery dead-lettered',
        );
        const dead = await deadLetter(outcome.reason, alertBody(alert), source, destination, key);
        return dead && persist('record', () => store.record(destination, alert.id, 'dead-lettered'));
      })
      .finally(() => inflight.delete(key));
    inflight.set(key, delivery);
    return delivery;
  }

  function parseFinding(text: string): { finding: Finding } | { problem: string; raw: unknown } {
    let raw: unknown = text;
    try {
      raw = JSON.parse(text);
    } catch {
      return { problem: 'value is not JSON', raw };
    }
    const result = FindingSchema.safeParse(raw);
    if (result.success) return { finding: result.data };
    const issues = result.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { problem: `not a valid finding: ${issues.join('; ')}`, raw };
  }

  /**
   * Reading pauses for findings held for digests (maxHeld) and for a healthy destination's full queue
   * (backpressure: it is slow, not down, and everything it gets will be delivered). A destination that
   * is failing is never waited for: past maxQueued its deliveries are dead-lettered at once, so it
   * holds only its own queue, never the others' deliveries.
   */
  async function waitForCapacity(heartbeat: () => Promise<void>, targets: Iterable<string> = []) {
    const busy = () =>
      throttle.heldCount() >= options.maxHeld ||
      [...targets].some((name) => {
        const queue = queues.get(name)!;
        return queue.full() && !queue.failing();
      });
    while (busy() && !stopping) {
      await sleep(100);
      await heartbeat();
    }
  }

  async function handleMessage({ topic, partition, message, heartbeat }: EachMessagePayload): Promise<void> {
    await waitForCapacity(heartbeat);
    const handle = offsets.track(partition, message.offset);
    const tracker = trackerFor(handle);
    metrics.findingsReceived.inc();
    const source: SourceInfo = { topic, partition, offset: message.offset };
    const parsed = parseFinding(message.value?.toString('utf8') ?? '');
    if ('problem' in parsed) {
      metrics.findingsInvalid.inc();
      logger.warn(
        { partition, offset: message.offset, problem: parsed.problem },
        'invalid finding dead-lettered',
      );
      settle(
        tracker,
        deadLetter(parsed.problem, parsed.raw, source, undefined, message.key?.toString('utf8')),
      );
      tracker.done();
      return;
    }
    const { finding } = parsed;
    source.cluster = finding.cluster;
    eventClock.observe(Date.parse(finding.firstSeen));
    const routes = router.match(finding);
    if (routes.length === 0) {
      metrics.findingsUnrouted.inc();
      logger.info(
        { findingId: finding.id, rule: finding.rule, severity: finding.severity },
        'no route matched',
      );
    }
    const targets = new Set<string>();
    for (const route of routes) {
      if (route.throttle) {
        const alreadyDelivered = route.destinations.every((d) => store.get(d, finding.id) !== undefined);
        const limit = { maxAlerts: route.throttle.maxAlerts, windowMs: route.throttle.window };
        if (throttle.admit(route.name, limit, finding, tracker, alreadyDelivered) === 'fold') {
          // Acknowledged when the digest it is folded into has an outcome everywhere.
          tracker.add();
          metrics.throttled.inc({ route: route.name });
          continue;
        }
      }
      for (const destination of route.destinations) targets.add(destination);
    }
    await waitForCapacity(heartbeat, targets);
    const alert = findingAlert(finding);
    for (const destination of targets) settle(tracker, dispatch(destination, alert, source));
    tracker.done();
  }

  function flushDigests(): void {
    const closeAtMs = eventClock.closing();
    const forgetAtMs = eventClock.watermark();
    if (closeAtMs === undefined || forgetAtMs === undefined) return; // no finding read yet
    for (const { digest, members } of throttle.due(closeAtMs, forgetAtMs)) {
      metrics.digests.inc({ route: digest.route });
      const route = routesByName.get(digest.route)!;
      const alert = digestAlert(digest);
      logger.info({ route: digest.route, identity: digest.identity, count: digest.count }, 'digest built');
      const all = Promise.all(route.destinations.map((d) => dispatch(d, alert, { cluster: digest.cluster })));
      const ok = all.then((results) => results.every(Boolean));
      for (const member of members) {
        settle(member, ok);
        member.done(); // releases the hold taken when the finding was folded
      }
    }
  }

  async function commit(): Promise<void> {
    if (committing || !consumer) return;
    committing = true;
    const ready = offsets.takeCommittable();
    try {
      if (ready.length > 0) {
        await consumer.commitOffsets(ready.map((o) => ({ topic: options.alertsTopic, ...o })));
        logger.debug({ offsets: ready }, 'offsets committed');
      }
    } catch (err) {
      offsets.restore(ready);
      metrics.errors.inc({ stage: 'commit', type: (err as Error).name ?? 'Error' });
      logger.warn({ err }, 'offset commit failed; will retry');
    } finally {
      committing = false;
    }
  }

  function updateGauges(): void {
    metrics.inFlight.set(offsets.inFlight());
    metrics.deliveredIds.set(store.size());
    for (const [name, queue] of queues)
      metrics.queueDepth.set({ destination: name }, queue.depth() + queue.active());
  }

  async function waitForDeliveries(timeoutMs: number): Promise<void> {
    const deadline = now() + timeoutMs;
    while (inflight.size > 0 && now() < deadline) await sleep(50);
  }

  return {
    async start(): Promise<void> {
      await startup.step('ensure topics', () =>
        ensureTopics(kafka, [{ topic: options.alertsTopic }, { topic: options.dlqTopic }]),
      );
      await startup.step('connect the producer', () => producer.connect());
      await store.start();
      // A short fetch wait keeps shutdown quick (stop waits for the fetch in progress); idle cost is one
      // small request per second.
      const findings = kafka.consumer({ groupId: options.groupId, maxWaitTimeInMs: 1000 });
      consumer = findings;
      deps.liveness?.watchConsumer(findings, 'findings consumer');
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        joined = true;
        const assigned = new Set(payload.memberAssignment[options.alertsTopic] ?? []);
        for (const partition of offsets.partitions()) {
          if (!assigned.has(partition)) offsets.drop(partition);
        }
        logger.info({ partitions: [...assigned] }, 'partitions assigned');
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        logger.error({ err: payload.error, restart: payload.restart }, 'consumer crashed');
        if (!payload.restart) crashed = true;
      });
      await startup.step('connect the consumer', () => findings.connect());
      await startup.step('subscribe to the alerts topic', () =>
        findings.subscribe({ topic: options.alertsTopic, fromBeginning: options.fromBeginning }),
      );
      await consumer.run({ autoCommit: false, eachMessage: handleMessage });
      timers.push(setInterval(() => void commit(), options.commitIntervalMs));
      timers.push(setInterval(flushDigests, options.throttleFlushIntervalMs));
      timers.push(setInterval(updateGauges, 1000));
      logger.info(
        { topic: options.alertsTopic, groupId: options.groupId, destinations: [...queues.keys()] },
        'alerter started',
      );
    },

    ready: () => joined && !stopping && !crashed && failingWrites === 0 && store.loaded(),

    /**
     * Stops reading, lets deliveries in progress finish for up to drainTimeoutMs, aborts the rest
     * (they stay unacknowledged and are delivered after the restart), commits what is acknowledged.
     * Findings held in an open throttle window stay unacknowledged too: after a restart they are read
     * again and throttled again, never lost.
     */
    async stop(stopOptions: { drainTimeoutMs?: number } = {}): Promise<void> {
      if (stopping) return;
      stopping = true;
      for (const timer of timers.splice(0)) clearInterval(timer);
      const t0 = now();
      // Each kafkajs consumer's stop waits for its fetch in progress (up to maxWaitTimeInMs), so the two
      // are stopped together rather than one after the other. The store's tail is not needed while
      // draining: outcomes are written through the producer and remembered in memory as they are.
      let storeError: unknown;
      const storeStopped = store.stop().then(
        () => logger.debug({ ms: now() - t0 }, 'store stopped'),
        (err: unknown) => {
          storeError = err;
        },
      );
      await consumer?.stop();
      logger.debug({ ms: now() - t0 }, 'consumer stopped');
      await waitForDeliveries(stopOptions.drainTimeoutMs ?? 10_000);
      abort.abort(new Error('alerter stopping'));
      await waitForDeliveries(5000);
      await commit();
      await consumer?.disconnect();
      logger.debug({ ms: now() - t0 }, 'consumer disconnected');
      await storeStopped;
      await producer.disconnect();
      if (storeError !== undefined) throw storeError;
      logger.info({ unacknowledged: offsets.inFlight() }, 'alerter stopped');
    },

    stats: () => ({
      inFlight: offsets.inFlight(),
      held: throttle.heldCount(),
      deliveries: inflight.size,
      deliveredIds: store.size(),
    }),
  };
}

export type Alerter = ReturnType<typeof createAlerter>;

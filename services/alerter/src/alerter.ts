import { type Finding, FindingSchema } from '@kaudit/audit-schema';
import {
  createOffsetTracker,
  createStartup,
  DEFAULT_STARTUP_TIMEOUT_MS,
  ensureTopics,
  type Liveness,
  type Logger,
  logConsumerCrash,
  type Startup,
  sleep,
} from '@kaudit/service-kit';
import type { Consumer, EachMessagePayload, Kafka, Producer } from 'kafkajs';
import { createAcks, type MessageTracker, type SourceInfo } from './acks';
import { digestAlert, findingAlert } from './alert';
import type { AlerterOptions } from './config';
import { createDeliveredStore, type DeliveredStore } from './delivered-store';
import { createDeliveryQueue, type DeliveryQueue } from './delivery-queue';
import type { Destination } from './destinations';
import { createDispatcher } from './dispatch';
import { createEventClock } from './event-clock';
import type { AlerterMetrics } from './metrics';
import { createRouter, type Route, type RoutingPolicy } from './routing';
import { createThrottle } from './throttle';

export type { AlerterOptions } from './config';

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
  let consumer: Consumer | undefined;
  let joined = false;
  let stopping = false;
  /** The consumer crashed for good. */
  let crashed = false;
  const eventClock = createEventClock({ now });
  const timers: NodeJS.Timeout[] = [];
  const acks = createAcks({
    offsets,
    producer,
    logger,
    metrics,
    topics: { alertsTopic: options.alertsTopic, dlqTopic: options.dlqTopic },
    writeRetry: deps.writeRetry ?? { retries: 5, initialDelayMs: 200, maxDelayMs: 30_000 },
    signal: abort.signal,
    now,
  });
  const dispatcher = createDispatcher({ queues, store, acks, logger, metrics, now });
  const { dispatch } = dispatcher;
  const commit = () => acks.commit(consumer);

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
    const tracker = acks.tracker(handle);
    metrics.findingsReceived.inc();
    const source: SourceInfo = { topic, partition, offset: message.offset };
    const parsed = parseFinding(message.value?.toString('utf8') ?? '');
    if ('problem' in parsed) {
      metrics.findingsInvalid.inc();
      logger.warn(
        { partition, offset: message.offset, problem: parsed.problem },
        'invalid finding dead-lettered',
      );
      acks.settle(
        tracker,
        acks.deadLetter(parsed.problem, parsed.raw, source, undefined, message.key?.toString('utf8')),
      );
      tracker.done();
      return;
    }
    const { finding } = parsed;
    source.cluster = finding.cluster;
    eventClock.observe(Date.parse(finding.firstSeen));
    const routes = router.match(finding);
    if ((finding.revision ?? 1) > 1) {
      foldUpdate(finding, routes, tracker);
      return;
    }
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
    for (const destination of targets) acks.settle(tracker, dispatch(destination, alert, source));
    tracker.done();
  }

  /**
   * A later revision of a finding already handled (revision 1 came first: the alerts topic is keyed by
   * finding id). No second alert for the same id: on a throttled route it is folded into the window's
   * digest (acknowledged when that is delivered), elsewhere it is not sent again.
   */
  function foldUpdate(finding: Finding, routes: Route[], tracker: MessageTracker): void {
    for (const route of routes) {
      if (!route.throttle) {
        metrics.updates.inc({ route: route.name, outcome: 'not_resent' });
        continue;
      }
      const limit = { maxAlerts: route.throttle.maxAlerts, windowMs: route.throttle.window };
      throttle.update(route.name, limit, finding, tracker);
      tracker.add();
      metrics.updates.inc({ route: route.name, outcome: 'folded' });
    }
    tracker.done();
  }

  function flushDigests(): void {
    const closeAtMs = eventClock.closing();
    const forgetAtMs = eventClock.watermark();
    if (closeAtMs === undefined || forgetAtMs === undefined) return; // no finding read yet
    releaseUpdates(throttle.due(closeAtMs, forgetAtMs));
  }

  /** Sends the digests of closed windows; acknowledges updates whose window had nothing to send. */
  function releaseUpdates(due: ReturnType<typeof throttle.due>): void {
    for (const member of throttle.takeReleased()) {
      acks.settle(member, Promise.resolve(true));
      member.done();
    }
    for (const { digest, members } of due) {
      metrics.digests.inc({ route: digest.route });
      const route = routesByName.get(digest.route)!;
      const alert = digestAlert(digest);
      logger.info({ route: digest.route, identity: digest.identity, count: digest.count }, 'digest built');
      const all = Promise.all(route.destinations.map((d) => dispatch(d, alert, { cluster: digest.cluster })));
      const ok = all.then((results) => results.every(Boolean));
      for (const member of members) {
        acks.settle(member, ok);
        member.done(); // releases the hold taken when the finding was folded
      }
    }
  }

  function updateGauges(): void {
    metrics.inFlight.set(offsets.inFlight());
    metrics.deliveredIds.set(store.size());
    for (const [name, queue] of queues)
      metrics.queueDepth.set({ destination: name }, queue.depth() + queue.active());
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
        logConsumerCrash(logger, payload);
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

    ready: () => joined && !stopping && !crashed && acks.failingWrites() === 0 && store.loaded(),

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
      await dispatcher.drain(stopOptions.drainTimeoutMs ?? 10_000);
      abort.abort(new Error('alerter stopping'));
      await dispatcher.drain(5000);
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
      deliveries: dispatcher.inFlight(),
      deliveredIds: store.size(),
    }),
  };
}

export type Alerter = ReturnType<typeof createAlerter>;

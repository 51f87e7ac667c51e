/**
 * Synthetic traffic for `pnpm bench:e2e`: a large, quiet cluster (service accounts reading their own
 * Secrets from pod addresses, kubelets renewing leases and fetching pod Secrets, controllers listing) at
 * Metadata level, in event-time order, with probes: anonymous Secret reads, each by its own identity, so
 * each makes exactly one finding (secret-anonymous-access) whose latency can be measured. Everything else
 * stays inside the learning period and raises nothing, as a healthy cluster would.
 */

export interface Probe {
  identity: string;
  /** Event time of the probe request, ms. */
  at: number;
  /**
   * When the detector may report its finding: once the watermark (the newest event time less the
   * allowed lateness) passes the probe request (ADR 0010), not when its window closes.
   */
  closesAt: number;
}

export interface TrafficBatch {
  /** Serialized events, in event-time order. */
  items: string[];
  minEventTime: number;
  maxEventTime: number;
  probes: Probe[];
}

export interface BenchTrafficOptions {
  /** Event time of the first event, ms. */
  startMs: number;
  /** Event time between two consecutive events, ms. */
  spacingMs: number;
  /** The detection policy's grouping window and allowed lateness, to know when a probe's window closes. */
  groupingWindowMs: number;
  allowedLatenessMs: number;
  serviceAccounts?: number;
  nodes?: number;
  /** Event times from this clock (the wall clock, for time to detect) instead of startMs + spacing. */
  now?: () => number;
  /** Prefix of probe identities (default bench-probe-). */
  probePrefix?: string;
}

let seed = 0x62656e63; // "benc": the same traffic on every run
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

function stamp(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 23)}000Z`;
}

export function createBenchTraffic(options: BenchTrafficOptions) {
  const accounts = Array.from({ length: options.serviceAccounts ?? 400 }, (_, i) => {
    const namespace = `team-${i % 40}`;
    return {
      username: `system:serviceaccount:${namespace}:app-${i}`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
      namespace,
      ip: `10.244.${(i >> 8) & 255}.${i & 255}`,
      agent: `app-${i % 7}/1.${i % 5}.0 (linux/amd64) kubernetes/v1.31.4`,
      secrets: [`app-${i}-db`, `app-${i}-tls`],
    };
  });
  const nodes = Array.from({ length: options.nodes ?? 60 }, (_, i) => ({
    username: `system:node:worker-${i}`,
    groups: ['system:nodes', 'system:authenticated'],
    ip: `10.0.${(i >> 8) & 255}.${i & 255}`,
    agent: 'kubelet/v1.31.4 (linux/amd64) kubernetes/a78aa47',
  }));
  const podsOf = new Map(
    nodes.map(
      (node, n) => [node.username, accounts.filter((sa) => sa.namespace === `team-${n % 40}`)] as const,
    ),
  );
  let clock = options.startMs;
  let sequence = 0;
  let probes = 0;

  const auditID = () => {
    sequence += 1;
    const hex = sequence.toString(16).padStart(12, '0');
    return `b0000000-0000-4000-8000-${hex}`;
  };

  const event = (fields: {
    username: string;
    groups: string[];
    ip: string;
    agent: string;
    verb: string;
    uri: string;
    ref: Record<string, string>;
  }) => {
    clock = options.now ? options.now() : clock + options.spacingMs;
    const at = stamp(clock);
    return JSON.stringify({
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: 'Metadata',
      auditID: auditID(),
      stage: 'ResponseComplete',
      requestURI: fields.uri,
      verb: fields.verb,
      user: { username: fields.username, groups: fields.groups },
      sourceIPs: [fields.ip],
      userAgent: fields.agent,
      objectRef: { ...fields.ref, apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 200 },
      requestReceivedTimestamp: at,
      stageTimestamp: stamp(clock + 3),
      annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': '' },
    });
  };

  const background = (): string => {
    const roll = random();
    if (roll < 0.35) {
      const sa = pick(accounts);
      const name = pick(sa.secrets);
      return event({
        ...sa,
        verb: 'get',
        uri: `/api/v1/namespaces/${sa.namespace}/secrets/${name}`,
        ref: { resource: 'secrets', namespace: sa.namespace, name },
      });
    }
    if (roll < 0.65) {
      const sa = pick(accounts);
      const resource = pick(['pods', 'configmaps', 'endpoints', 'services']);
      return event({
        ...sa,
        verb: 'list',
        uri: `/api/v1/namespaces/${sa.namespace}/${resource}?limit=500`,
        ref: { resource, namespace: sa.namespace },
      });
    }
    const node = pick(nodes);
    if (roll < 0.85) {
      return event({
        ...node,
        verb: 'update',
        uri: `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${node.username.slice(12)}?timeout=10s`,
        ref: {
          resource: 'leases',
          namespace: 'kube-node-lease',
          name: node.username.slice(12),
          apiGroup: 'coordination.k8s.io',
        },
      });
    }
    // A kubelet fetches the Secrets of the pods scheduled on it: one team's, here.
    const sa = pick(podsOf.get(node.username) ?? accounts);
    return event({
      ...node,
      verb: 'get',
      uri: `/api/v1/namespaces/${sa.namespace}/secrets/${sa.secrets[0]}?resourceVersion=0`,
      ref: { resource: 'secrets', namespace: sa.namespace, name: sa.secrets[0] ?? '' },
    });
  };

  const probe = (): { text: string; probe: Probe } => {
    probes += 1;
    const identity = `${options.probePrefix ?? 'bench-probe-'}${probes}`;
    const text = event({
      username: identity,
      groups: ['system:unauthenticated'],
      ip: '198.51.100.77',
      agent: 'curl/8.5.0',
      verb: 'get',
      uri: '/api/v1/namespaces/team-0/secrets/app-0-db',
      ref: { resource: 'secrets', namespace: 'team-0', name: 'app-0-db' },
    });
    return { text, probe: { identity, at: clock, closesAt: clock + options.allowedLatenessMs } };
  };

  return {
    /** The next `size` events; with `withProbe`, one of them (in the middle) is a probe. */
    nextBatch(size: number, withProbe: boolean): TrafficBatch {
      const items: string[] = [];
      const batchProbes: Probe[] = [];
      const minEventTime = clock + options.spacingMs;
      for (let i = 0; i < size; i++) {
        if (withProbe && i === size >> 1) {
          const made = probe();
          items.push(made.text);
          batchProbes.push(made.probe);
        } else {
          items.push(background());
        }
      }
      return { items, minEventTime, maxEventTime: clock, probes: batchProbes };
    },
  };
}

// Generates examples/audit-week.jsonl: nine days of a small production cluster's API server audit log
// (audit.k8s.io/v1, Metadata level, JSON lines as the log backend writes them), then an intrusion on the
// night of Tuesday 10 February 2026:
//   02:41 CET  alice@example.com's credentials are used from 203.0.113.66, an address never seen for her:
//              first `kubectl auth can-i --list`, then Secrets in `payments` are read — at night
//              (secret-off-hours, secret-new-source-ip);
//   02:47      with them a new service account default/backup-helper is created, bound to cluster-admin
//              and given a token (credential-minted);
//   02:49      that token lists every Secret in the cluster from the same address
//              (secret-new-service-account, secret-enumeration, privilege-escalation-then-secrets: the
//              binding and the token, then the reads), then reads four, the last a canary
//              (secret-canary-read).
// Everything else is the normal life of the cluster, shaped so that policies/detection.yaml (Europe/Berlin,
// business hours Mon-Fri 08:00-19:00, 7-day learning period) flags nothing in it: people read Secrets at
// work only, from addresses and clients they used in the first week; controllers run around the clock.
//
// Deterministic (seeded PRNG, fixed dates): `node examples/generate.ts` rewrites the same bytes.
// Node 24 runs TypeScript directly (type stripping); only erasable syntax is used here, and CommonJS
// `require` so that Node needs no package.json "type" to run it.
const { writeFileSync } = require('node:fs') as typeof import('node:fs');
const { join } = require('node:path') as typeof import('node:path');

const OUTPUT = join(__dirname, 'audit-week.jsonl');
/** Europe/Berlin in February (no DST change between 1 and 11 February 2026). */
const UTC_OFFSET_HOURS = 1;
/** Monday 2 February 2026, 00:00 local time. */
const START_LOCAL = Date.UTC(2026, 1, 2, 0, 0, 0);
/** Data ends on Tuesday 10 February 2026 at 12:00 local time. */
const END_LOCAL = Date.UTC(2026, 1, 10, 12, 0, 0);

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// mulberry32: tiny, fast, and the same sequence on every machine.
let seed = 0x6b617564; // "kaud"
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const between = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
function pick<T>(items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}
function uuid(): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((Number.parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16);
  const s = hex.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/** Local wall-clock ms (as if UTC) -> the real instant. */
const fromLocal = (local: number) => local - UTC_OFFSET_HOURS * HOUR;

/** RFC 3339 with microseconds, as the API server writes it. */
function stamp(ms: number, micros: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}.${String((ms % 1000) * 1000 + micros).padStart(6, '0')}Z`;
}

interface Who {
  username: string;
  uid?: string;
  groups: string[];
  agent: string;
}

interface Request {
  /** Local wall-clock time of the request, ms. */
  at: number;
  who: Who;
  ip: string;
  verb: string;
  uri: string;
  ref?: Record<string, string>;
  code?: number;
  /** Watches: how long the watch stayed open, ms (it logs ResponseStarted, then ResponseComplete). */
  watchMs?: number;
  latencyMs?: number;
  reason?: string;
}

interface Line {
  sortKey: number;
  seq: number;
  text: string;
}

const lines: Line[] = [];
let sequence = 0;

function emit(request: Request): void {
  const received = fromLocal(request.at);
  const receivedMicros = between(0, 999);
  const code = request.code ?? 200;
  const decision = code === 403 ? 'forbid' : 'allow';
  const base = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: uuid(),
    stage: 'ResponseComplete',
    requestURI: request.uri,
    verb: request.verb,
    user: {
      username: request.who.username,
      ...(request.who.uid ? { uid: request.who.uid } : {}),
      groups: request.who.groups,
    },
    sourceIPs: [request.ip],
    userAgent: request.who.agent,
    ...(request.ref ? { objectRef: { ...request.ref } } : {}),
    responseStatus:
      code < 400 ? { metadata: {}, code } : { metadata: {}, status: 'Failure', reason: 'Forbidden', code },
    requestReceivedTimestamp: stamp(received, receivedMicros),
    stageTimestamp: '',
    annotations: {
      'authorization.k8s.io/decision': decision,
      'authorization.k8s.io/reason': request.reason ?? '',
    },
  };
  const stages: Array<[string, number]> = request.watchMs
    ? [
        ['ResponseStarted', received + between(1, 4)],
        ['ResponseComplete', received + request.watchMs],
      ]
    : [['ResponseComplete', received + (request.latencyMs ?? between(2, 40))]];
  for (const [stage, at] of stages) {
    const event = { ...base, stage, stageTimestamp: stamp(at, between(0, 999)) };
    lines.push({ sortKey: at, seq: sequence++, text: JSON.stringify(event) });
  }
}

// ---------------------------------------------------------------- who is who

const humanGroups = ['oidc:engineering', 'system:authenticated'];
const alice: Who = {
  username: 'alice@example.com',
  groups: ['oidc:platform-admins', ...humanGroups],
  agent: 'kubectl/v1.31.4 (darwin/arm64) kubernetes/a78aa47',
};
const bob: Who = {
  username: 'bob@example.com',
  groups: ['oidc:shop-devs', ...humanGroups],
  agent: 'k9s/v0.32.7 (linux/amd64) kubernetes/$Format',
};
const carol: Who = {
  username: 'carol@example.com',
  groups: ['oidc:sre', ...humanGroups],
  agent: 'kubectl/v1.30.8 (linux/amd64) kubernetes/7f5d6ea',
};
const sa = (namespace: string, name: string, agent: string, uid: string): Who => ({
  username: `system:serviceaccount:${namespace}:${name}`,
  uid,
  groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  agent,
});
const certManager = sa(
  'cert-manager',
  'cert-manager',
  'cert-manager-controller/v1.16.2 (linux/amd64) cert-manager/fe7f3ab7',
  '3f1f0e1c-5a2d-4a55-9c3e-1c0f3a6d2b11',
);
const argocd = sa(
  'argocd',
  'argocd-application-controller',
  'argocd-application-controller/v2.13.1 (linux/amd64) kubernetes/af54ef8',
  'b0c7a3e2-6d1f-4f0a-8e9b-2a4c5d6e7f80',
);
const deployer = sa('ci', 'deployer', 'Helm/3.16.3', '9d8e7f6a-5b4c-4d3e-8f2a-1b0c9d8e7f6a');
const prometheus = sa(
  'monitoring',
  'prometheus-k8s',
  'prometheus/2.55.1',
  '6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d',
);
const node = (n: number): Who => ({
  username: `system:node:worker-${n}`,
  groups: ['system:nodes', 'system:authenticated'],
  agent: 'kubelet/v1.31.4 (linux/amd64) kubernetes/a78aa47',
});
const controllerManager: Who = {
  username: 'system:kube-controller-manager',
  groups: ['system:authenticated'],
  agent: 'kube-controller-manager/v1.31.4 (linux/amd64) kubernetes/a78aa47/leader-election',
};
const scheduler: Who = {
  username: 'system:kube-scheduler',
  groups: ['system:authenticated'],
  agent: 'kube-scheduler/v1.31.4 (linux/amd64) kubernetes/a78aa47/leader-election',
};

const OFFICE = '198.51.100.23';
const ips: Record<string, string[]> = {
  [alice.username]: [OFFICE, '192.0.2.45'], // office, home VPN exit
  [bob.username]: [OFFICE],
  [carol.username]: [OFFICE, '192.0.2.118'],
};
const podIP = () => `10.244.${between(0, 3)}.${between(2, 250)}`;
const CONTROL_PLANE_IP = '10.0.0.10';

const secretRef = (namespace: string, name?: string): Record<string, string> => ({
  resource: 'secrets',
  ...(namespace ? { namespace } : {}),
  ...(name ? { name } : {}),
  apiVersion: 'v1',
});
const ref = (resource: string, namespace?: string, name?: string, apiGroup?: string, apiVersion = 'v1') => ({
  resource,
  ...(namespace ? { namespace } : {}),
  ...(name ? { name } : {}),
  ...(apiGroup ? { apiGroup } : {}),
  apiVersion,
});
const rbac = (binding: string, role: string, subject: string) =>
  `RBAC: allowed by ClusterRoleBinding "${binding}" of ClusterRole "${role}" to ${subject}`;

// ---------------------------------------------------------------- people, at work

interface Habit {
  who: Who;
  /** Namespaces they work in. */
  namespaces: string[];
  /** Secrets they read now and then, at work only. */
  secrets: Array<[string, string]>;
  reason: string;
}

const habits: Habit[] = [
  {
    who: alice,
    namespaces: ['payments', 'platform', 'ingress-nginx'],
    secrets: [
      ['payments', 'stripe-api-key'],
      ['platform', 'grafana-admin'],
      ['ingress-nginx', 'wildcard-tls'],
    ],
    reason: rbac('platform-admins', 'cluster-admin', 'Group "oidc:platform-admins"'),
  },
  {
    who: bob,
    namespaces: ['shop'],
    secrets: [
      ['shop', 'db-credentials'],
      ['shop', 'session-key'],
    ],
    reason: 'RBAC: allowed by RoleBinding "shop-devs/shop" of ClusterRole "edit" to Group "oidc:shop-devs"',
  },
  {
    who: carol,
    namespaces: ['monitoring', 'shop', 'payments', 'kube-system'],
    secrets: [['monitoring', 'alertmanager-config']],
    reason: rbac('sre', 'sre-operator', 'Group "oidc:sre"'),
  },
];

const workVerbs: Array<[string, (ns: string) => { uri: string; ref: Record<string, string> }]> = [
  ['list', (ns) => ({ uri: `/api/v1/namespaces/${ns}/pods?limit=500`, ref: ref('pods', ns) })],
  [
    'get',
    (ns) => ({
      uri: `/apis/apps/v1/namespaces/${ns}/deployments/api`,
      ref: ref('deployments', ns, 'api', 'apps'),
    }),
  ],
  ['list', (ns) => ({ uri: `/api/v1/namespaces/${ns}/events?limit=500`, ref: ref('events', ns) })],
  [
    'get',
    (ns) => ({
      uri: `/api/v1/namespaces/${ns}/pods/api-7d9f8b6c5d-x2x9q/log?container=api`,
      ref: { ...ref('pods', ns, 'api-7d9f8b6c5d-x2x9q'), subresource: 'log' },
    }),
  ],
  ['list', (ns) => ({ uri: `/api/v1/namespaces/${ns}/configmaps?limit=500`, ref: ref('configmaps', ns) })],
  [
    'list',
    (ns) => ({
      uri: `/apis/apps/v1/namespaces/${ns}/replicasets?limit=500`,
      ref: ref('replicasets', ns, undefined, 'apps'),
    }),
  ],
];

function workday(habit: Habit, dayStart: number, dayIndex: number, until: number): void {
  const { who } = habit;
  const addresses = ips[who.username] as string[];
  // The first week uses every address (so each is known before the learning period ends).
  const ip = dayIndex < addresses.length ? (addresses[dayIndex] as string) : pick(addresses);
  const sessions = between(3, 5);
  let secretReadsLeft = between(1, habit.secrets.length);
  for (let s = 0; s < sessions; s++) {
    // Sessions between 09:00 and 17:30, each a burst of kubectl calls a few seconds apart.
    let at = dayStart + 9 * HOUR + Math.floor(((8.5 * HOUR) / sessions) * (s + random() * 0.7));
    if (at >= until) return;
    const ns = pick(habit.namespaces);
    for (let i = between(6, 14); i > 0; i--) {
      const [verb, build] = pick(workVerbs);
      emit({ at, who, ip, verb, ...build(ns), reason: habit.reason });
      at += between(2, 90) * 1000;
    }
    if (secretReadsLeft > 0 && random() < 0.7) {
      const [sns, name] = pick(habit.secrets);
      emit({
        at,
        who,
        ip,
        verb: 'get',
        uri: `/api/v1/namespaces/${sns}/secrets/${name}`,
        ref: secretRef(sns, name),
        reason: habit.reason,
      });
      secretReadsLeft -= 1;
    }
  }
}

// ---------------------------------------------------------------- the cluster's own life

function controllers(from: number, to: number): void {
  const workers = [1, 2];
  for (let hour = from; hour < to; hour += HOUR) {
    // cert-manager watches every Secret in the cluster (it owns the TLS ones), renewing the watch hourly.
    const certIP = podIP();
    emit({
      at: hour + between(0, 5) * MINUTE,
      who: certManager,
      ip: certIP,
      verb: 'watch',
      uri: `/api/v1/secrets?allowWatchBookmarks=true&labelSelector=controller.cert-manager.io%2Ffao%3Dtrue&resourceVersion=${between(100000, 999999)}&timeout=9m41s&timeoutSeconds=581&watch=true`,
      ref: secretRef(''),
      watchMs: 581_000,
      reason: rbac(
        'cert-manager-controller-issuers',
        'cert-manager-controller-issuers',
        'ServiceAccount "cert-manager/cert-manager"',
      ),
    });
    emit({
      at: hour + between(10, 50) * MINUTE,
      who: certManager,
      ip: certIP,
      verb: 'list',
      uri: '/apis/cert-manager.io/v1/certificates?limit=500&resourceVersion=0',
      ref: ref('certificates', undefined, undefined, 'cert-manager.io'),
      reason: rbac(
        'cert-manager-controller-certificates',
        'cert-manager-controller-certificates',
        'ServiceAccount "cert-manager/cert-manager"',
      ),
    });

    // Argo CD reads its cluster and repository credentials on every sync, twice an hour.
    for (const half of [0, 30]) {
      const at = hour + (half + between(0, 4)) * MINUTE + between(0, 59) * 1000;
      const argoIP = '10.244.1.37';
      const name = pick(['cluster-kubernetes.default.svc', 'repo-creds-github']);
      emit({
        at,
        who: argocd,
        ip: argoIP,
        verb: 'get',
        uri: `/api/v1/namespaces/argocd/secrets/${name}`,
        ref: secretRef('argocd', name),
        reason:
          'RBAC: allowed by RoleBinding "argocd-application-controller/argocd" of Role "argocd-application-controller" to ServiceAccount "argocd-application-controller/argocd"',
      });
      emit({
        at: at + 1200,
        who: argocd,
        ip: argoIP,
        verb: 'list',
        uri: '/apis/argoproj.io/v1alpha1/namespaces/argocd/applications?limit=500',
        ref: ref('applications', 'argocd', undefined, 'argoproj.io', 'v1alpha1'),
        reason: rbac(
          'argocd-application-controller',
          'argocd-application-controller',
          'ServiceAccount "argocd/argocd-application-controller"',
        ),
      });
    }

    // Prometheus discovers its targets.
    emit({
      at: hour + between(0, 59) * MINUTE,
      who: prometheus,
      ip: '10.244.2.14',
      verb: 'list',
      uri: '/api/v1/endpoints?limit=500&resourceVersion=0',
      ref: ref('endpoints'),
      reason: rbac('prometheus-k8s', 'prometheus-k8s', 'ServiceAccount "monitoring/prometheus-k8s"'),
    });

    // Kubelets renew their leases and fetch the Secrets mounted by their pods.
    for (const n of workers) {
      const ip = `10.0.1.${10 + n}`;
      for (const half of [0, 30]) {
        emit({
          at: hour + (half + between(0, 29)) * MINUTE,
          who: node(n),
          ip,
          verb: 'update',
          uri: `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/worker-${n}?timeout=10s`,
          ref: ref('leases', 'kube-node-lease', `worker-${n}`, 'coordination.k8s.io'),
          reason: '',
        });
      }
      const [sns, name] = pick([
        ['shop', 'db-credentials'],
        ['shop', 'session-key'],
        ['payments', 'stripe-api-key'],
        ['monitoring', 'alertmanager-config'],
        ['argocd', 'argocd-secret'],
      ] as const);
      emit({
        at: hour + between(0, 59) * MINUTE,
        who: node(n),
        ip,
        verb: 'get',
        uri: `/api/v1/namespaces/${sns}/secrets/${name}?resourceVersion=0`,
        ref: secretRef(sns, name),
        reason: '',
      });
    }

    // Control-plane leader election.
    for (const who of [controllerManager, scheduler]) {
      const lease = who === scheduler ? 'kube-scheduler' : 'kube-controller-manager';
      emit({
        at: hour + between(0, 59) * MINUTE,
        who,
        ip: CONTROL_PLANE_IP,
        verb: 'update',
        uri: `/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/${lease}?timeout=5s`,
        ref: ref('leases', 'kube-system', lease, 'coordination.k8s.io'),
        reason: `RBAC: allowed by ClusterRoleBinding "system:${lease}" of ClusterRole "system:${lease}" to User "system:${lease}"`,
      });
    }
  }
}

/** The nightly release job: at 02:00 it reads the registry and database credentials and rolls out. */
function nightlyDeploy(dayStart: number): void {
  let at = dayStart + 2 * HOUR + between(0, 3) * MINUTE + between(0, 59) * 1000;
  const ip = podIP();
  const reason =
    'RBAC: allowed by RoleBinding "deployer/shop" of ClusterRole "edit" to ServiceAccount "deployer/ci"';
  for (const [sns, name] of [
    ['ci', 'registry-credentials'],
    ['shop', 'db-credentials'],
  ] as const) {
    emit({
      at,
      who: deployer,
      ip,
      verb: 'get',
      uri: `/api/v1/namespaces/${sns}/secrets/${name}`,
      ref: secretRef(sns, name),
      reason,
    });
    at += between(1, 5) * 1000;
  }
  emit({
    at,
    who: deployer,
    ip,
    verb: 'list',
    uri: '/api/v1/namespaces/shop/secrets?labelSelector=owner%3Dhelm%2Cname%3Dshop',
    ref: secretRef('shop'),
    reason,
  });
  at += 2000;
  emit({
    at,
    who: deployer,
    ip,
    verb: 'create',
    uri: '/api/v1/namespaces/shop/secrets',
    ref: secretRef('shop', 'sh.helm.release.v1.shop.v1'),
    code: 201,
    reason,
  });
  at += 1500;
  emit({
    at,
    who: deployer,
    ip,
    verb: 'patch',
    uri: '/apis/apps/v1/namespaces/shop/deployments/api',
    ref: ref('deployments', 'shop', 'api', 'apps'),
    reason,
  });
}

// ---------------------------------------------------------------- the intrusion

function intrusion(): void {
  const night = Date.UTC(2026, 1, 10, 2, 41, 7);
  const attacker = '203.0.113.66';
  const stolen: Who = { ...alice, agent: 'kubectl/v1.31.4 (linux/amd64) kubernetes/a78aa47' };
  const reason = habits[0]?.reason ?? '';
  let at = night;
  const step = (
    request: Omit<Request, 'at' | 'who' | 'ip' | 'reason'>,
    who: Who = stolen,
    pause = between(3, 20) * 1000,
  ) => {
    emit({ at, who, ip: attacker, reason, ...request });
    at += pause;
  };
  // The intruder first asks what the stolen credentials allow (`kubectl auth can-i --list`): a harmless
  // request from the new address seconds before the first Secret read, which must not make the address
  // "known" (network.knownAddressMinAge). The kubeconfig's context points at `payments`: its Secrets next.
  step({
    verb: 'create',
    uri: '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews',
    ref: ref('selfsubjectrulesreviews', undefined, undefined, 'authorization.k8s.io'),
    code: 201,
  });
  step({ verb: 'list', uri: '/api/v1/namespaces/payments/secrets?limit=500', ref: secretRef('payments') });
  step({
    verb: 'get',
    uri: '/api/v1/namespaces/payments/secrets/stripe-api-key',
    ref: secretRef('payments', 'stripe-api-key'),
  });
  step({
    verb: 'get',
    uri: '/api/v1/namespaces/payments/secrets/postgres-admin',
    ref: secretRef('payments', 'postgres-admin'),
  });
  step({ verb: 'list', uri: '/api/v1/namespaces?limit=500', ref: ref('namespaces') });

  at = Date.UTC(2026, 1, 10, 2, 47, 12);
  step({
    verb: 'create',
    uri: '/api/v1/namespaces/default/serviceaccounts',
    ref: ref('serviceaccounts', 'default', 'backup-helper'),
    code: 201,
  });
  step({
    verb: 'create',
    uri: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    ref: ref('clusterrolebindings', undefined, 'backup-helper-admin', 'rbac.authorization.k8s.io'),
    code: 201,
  });
  step({
    verb: 'create',
    uri: '/api/v1/namespaces/default/serviceaccounts/backup-helper/token',
    ref: { ...ref('serviceaccounts', 'default', 'backup-helper'), subresource: 'token' },
    code: 201,
  });

  const helper = sa('default', 'backup-helper', 'curl/8.5.0', '0e6b2f1a-7c3d-4e5f-a6b7-c8d9e0f1a2b3');
  const helperReason = {
    reason: rbac('backup-helper-admin', 'cluster-admin', 'ServiceAccount "default/backup-helper"'),
  };
  at = Date.UTC(2026, 1, 10, 2, 49, 31);
  emit({
    at,
    who: helper,
    ip: attacker,
    verb: 'list',
    uri: '/api/v1/secrets',
    ref: secretRef(''),
    latencyMs: 184,
    ...helperReason,
  });
  at += 41_000;
  for (const [sns, name] of [
    ['kube-system', 'bootstrap-token-8f3k2a'],
    ['argocd', 'repo-creds-github'],
    ['payments', 'postgres-admin'],
    // A canary (rules.secret-canary-read in policies/detection.yaml): a decoy nobody has a reason to read.
    ['kube-system', 'etcd-backup-credentials'],
  ] as const) {
    emit({
      at,
      who: helper,
      ip: attacker,
      verb: 'get',
      uri: `/api/v1/namespaces/${sns}/secrets/${name}`,
      ref: secretRef(sns, name),
      ...helperReason,
    });
    at += between(2, 6) * 1000;
  }
}

// ---------------------------------------------------------------- the week

controllers(START_LOCAL, END_LOCAL);
for (let day = 0; START_LOCAL + day * DAY < END_LOCAL; day++) {
  const dayStart = START_LOCAL + day * DAY;
  const weekday = (day % 7) + 1; // 1 = Monday
  nightlyDeploy(dayStart);
  if (weekday <= 5) {
    for (const habit of habits) workday(habit, dayStart, day, END_LOCAL);
    // Bob once tries a payments Secret he may not read (one denial is not a burst).
    if (day === 2) {
      emit({
        at: dayStart + 14 * HOUR + 12 * MINUTE,
        who: bob,
        ip: OFFICE,
        verb: 'get',
        uri: '/api/v1/namespaces/payments/secrets/stripe-api-key',
        ref: secretRef('payments', 'stripe-api-key'),
        code: 403,
        reason: '',
      });
    }
  } else {
    // Carol is on call at the weekend: she looks at pods from home, no Secrets.
    const at = dayStart + between(10, 20) * HOUR;
    for (let i = 0; i < 4; i++) {
      emit({
        at: at + i * 30_000,
        who: carol,
        ip: '192.0.2.118',
        verb: 'list',
        uri: '/api/v1/namespaces/shop/pods?limit=500',
        ref: ref('pods', 'shop'),
        reason: habits[2]?.reason ?? '',
      });
    }
  }
}
intrusion();

lines.sort((a, b) => a.sortKey - b.sortKey || a.seq - b.seq);
const text = `${lines.map((line) => line.text).join('\n')}\n`;
writeFileSync(OUTPUT, text);
process.stdout.write(
  `wrote ${lines.length} events (${(text.length / 1024 / 1024).toFixed(2)} MiB) to ${OUTPUT}\n`,
);

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ApiServer, startApiServer } from '@kaudit/testkit';
import { parseAllDocuments } from 'yaml';
import { loadRenderedConfigs } from '../unit/chart-pods';
import { serviceVariables } from '../unit/service-variables';

// The Helm chart (deploy/helm/kaudit) proven with the real tools: helm built from the Go module proxy
// (test/stack/helm.sh) lints and renders it, and every rendered object is applied with
// `kubectl apply --dry-run=server` to a real kube-apiserver (schema, defaulting, admission including
// Pod Security "restricted"). The API server is the test stack's (KAUDIT_KUBECONFIG, from
// `pnpm stack:up --with-apiserver`) or, without one, this suite's own on free ports (startApiServer).
const root = join(__dirname, '../..');
const chart = join(root, 'deploy/helm/kaudit');
const externalValues = join(chart, 'ci/external-values.yaml');
// The value sets rendered: the defaults, and each file in the chart's ci/ (external Kafka/ES + cert-manager +
// monitoring; a private Kafka/ES with mTLS and basic auth, NodePort, and the other template branches).
const VALUE_SETS = {
  default: [] as string[],
  external: ['-f', externalValues],
  private: ['-f', join(chart, 'ci/private-values.yaml')],
};
type ValueSet = keyof typeof VALUE_SETS;
const valueSets = Object.keys(VALUE_SETS) as ValueSet[];
const namespace = 'kaudit';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}
const run = (command: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): Run => {
  const result = spawnSync(command, args, {
    input,
    encoding: 'utf8',
    env: env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
};

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}
const objectsOf = (text: string): K8sObject[] =>
  parseAllDocuments(text)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);

let helm = '';
let certs = '';
/** Real PEM files for the Secret keys that hold certificates (the loaders parse them), stand-ins otherwise. */
const pem = (_secret: string, key: string): string | undefined => {
  const file = { 'ca.crt': 'ca.crt', 'tls.crt': 'client.crt', 'tls.key': 'client.key' }[key];
  return file ? readFileSync(join(certs, file), 'utf8') : undefined;
};
let kubectl = '';
let kubeconfig = '';
let ownApiServer: ApiServer | undefined;
let ownDir = '';
const renders: Record<ValueSet, string> = { default: '', external: '', private: '' };

const helmTemplate = (...args: string[]) =>
  run(helm, ['template', 'kaudit', chart, '--namespace', namespace, ...args]);
const kube = (args: string[], input?: string) => run(kubectl, ['--kubeconfig', kubeconfig, ...args], input);

beforeAll(async () => {
  helm = execFileSync('bash', [join(root, 'test/stack/helm.sh')], { encoding: 'utf8' }).trim();
  certs = mkdtempSync(join(tmpdir(), 'kaudit-helm-certs-'));
  execFileSync('sh', [join(root, 'deploy/compose/dev-certs.sh'), certs, String(process.getuid?.() ?? 0)]);
  for (const [name, args] of Object.entries(VALUE_SETS) as Array<[ValueSet, string[]]>) {
    const result = helmTemplate(...args);
    if (result.status !== 0) throw new Error(`helm template (${name}) failed: ${result.stderr}`);
    renders[name] = result.stdout;
  }

  if (process.env.KAUDIT_KUBECONFIG && process.env.KAUDIT_KUBECTL) {
    kubeconfig = process.env.KAUDIT_KUBECONFIG;
    kubectl = process.env.KAUDIT_KUBECTL;
  } else {
    ownDir = mkdtempSync(join(tmpdir(), 'kaudit-helm-apiserver-'));
    ownApiServer = await startApiServer({ dir: ownDir });
    kubeconfig = ownApiServer.kubeconfigs.admin;
    kubectl = ownApiServer.kubectlPath;
  }

  // CRDs of cert-manager and prometheus-operator (minimal, see the fixture), and the namespace the
  // objects go to (a dry run needs it to exist), enforcing Pod Security "restricted".
  const crds = kube(['apply', '-f', join(__dirname, 'fixtures/minimal-crds.yaml')]);
  if (crds.status !== 0) throw new Error(`CRDs refused: ${crds.stderr}`);
  const established = kube(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  if (established.status !== 0) throw new Error(`CRDs not established: ${established.stderr}`);
  const ns = kube(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: namespace,
        labels: {
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
        },
      },
    }),
  );
  if (ns.status !== 0) throw new Error(`namespace refused: ${ns.stderr}`);
}, 20 * 60_000);

afterAll(async () => {
  rmSync(certs, { recursive: true, force: true });
  if (ownApiServer) {
    await ownApiServer.stop();
    rmSync(ownDir, { recursive: true, force: true });
  }
});

/** Applies the objects with a server-side dry run; returns what the server said per object. */
function dryRun(text: string, args: string[] = ['-f', '-']): { run: Run; accepted: Set<string> } {
  const result = kube(['apply', '--dry-run=server', '-n', namespace, ...args], text);
  const accepted = new Set(
    [
      ...result.stdout.matchAll(
        /^([a-z0-9.-]+)\/([a-z0-9.-]+) (?:created|configured|unchanged) \(server dry run\)$/gm,
      ),
    ].map((m) => `${m[1]!.split('.')[0]}/${m[2]}`),
  );
  return { run: result, accepted };
}
const key = (o: K8sObject) => `${o.kind.toLowerCase()}/${o.metadata.name}`;

describe('deploy > helm chart (helm + a real kube-apiserver)', () => {
  it('passes helm lint --strict with every value set', () => {
    for (const args of Object.values(VALUE_SETS)) {
      const result = run(helm, ['lint', '--strict', chart, ...args]);
      expect({ args, status: result.status, out: result.stdout + result.stderr }).toMatchObject({
        args,
        status: 0,
      });
    }
  });

  it('refuses values outside values.schema.json', () => {
    for (const set of [
      'sink.replicas=1',
      'sink.port=70000',
      'kafka.sasl.mechanism=gssapi',
      'sink.antiAffinity=no',
    ]) {
      const result = helmTemplate('--set', set);
      expect({ set, status: result.status }).toEqual({ set, status: 1 });
      expect(result.stderr).toContain('values don');
    }
    // What the schema cannot say: the sink needs one kind of client authentication.
    const noAuth = helmTemplate('--set', 'sink.clientCA.secretName=');
    expect(noAuth.status).toBe(1);
    expect(noAuth.stderr).toContain('sink.clientCA.secretName (mTLS) or sink.authTokenSecret.name');
  });

  it('renders what the issue asks for', () => {
    const byKind = (text: string) => {
      const map = new Map<string, K8sObject[]>();
      for (const o of objectsOf(text)) map.set(o.kind, [...(map.get(o.kind) ?? []), o]);
      return map;
    };
    const plain = byKind(renders.default);
    const sink = plain.get('StatefulSet')!.find((o) => o.metadata.name === 'kaudit-sink')!;
    expect(sink.spec).toMatchObject({ replicas: 2, volumeClaimTemplates: [{ metadata: { name: 'spool' } }] });
    expect(
      plain
        .get('Deployment')!
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['kaudit-alerter', 'kaudit-detector', 'kaudit-indexer']);
    expect(plain.get('PodDisruptionBudget')).toHaveLength(4);
    expect(plain.get('NetworkPolicy')).toHaveLength(4);
    expect(plain.has('ServiceMonitor') || plain.has('Certificate')).toBe(false);

    const external = byKind(renders.external);
    expect(external.get('Certificate')).toHaveLength(1);
    expect(external.get('ServiceMonitor')).toHaveLength(4);
    expect(external.get('PrometheusRule')).toHaveLength(1);
    expect(
      external
        .get('StatefulSet')!
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['kaudit-detector', 'kaudit-sink']);
    const sinkService = external.get('Service')!.find((o) => o.metadata.name === 'kaudit-sink')!;
    expect(sinkService.spec).toMatchObject({ type: 'LoadBalancer' });

    const priv = byKind(renders.private);
    expect(priv.get('Service')!.find((o) => o.metadata.name === 'kaudit-sink')!.spec).toMatchObject({
      type: 'NodePort',
      clusterIP: '10.96.0.100',
      ports: [{ nodePort: 30443 }],
    });
    expect(priv.has('NetworkPolicy') || priv.has('ServiceAccount')).toBe(false);
    expect(JSON.stringify(priv.get('StatefulSet'))).toContain(
      'preferredDuringSchedulingIgnoredDuringExecution',
    );
  });

  it("has PrometheusRule expressions that Prometheus' own PromQL parser accepts", () => {
    const rule = objectsOf(renders.external).find((o) => o.kind === 'PrometheusRule')!;
    const exprs = (rule.spec as { groups: Array<{ rules: Array<{ expr: string }> }> }).groups.flatMap((g) =>
      g.rules.map((r) => r.expr),
    );
    expect(exprs.length).toBeGreaterThanOrEqual(7);
    const checker = execFileSync('bash', [join(root, 'test/stack/promql-check.sh')], {
      encoding: 'utf8',
    }).trim();
    const parsed = run(checker, [], JSON.stringify(exprs));
    expect({ status: parsed.status, lines: parsed.stdout.trim().split('\n') }).toEqual({
      status: 0,
      lines: exprs.map(() => 'ok'),
    });
    // The checker fails on a broken expression (so the line above can fail).
    expect(run(checker, [], JSON.stringify(['max by (pod) (kaudit_sink_spool_bytes >'])).status).toBe(1);
  });

  it("sets, in each service's container, only the variables that service reads", () => {
    const known = serviceVariables();
    for (const text of Object.values(renders)) {
      for (const o of objectsOf(text)) {
        if (o.kind !== 'StatefulSet' && o.kind !== 'Deployment') continue;
        const pod = (
          o.spec as {
            template: { spec: { containers: Array<{ name: string; env: Array<{ name: string }> }> } };
          }
        ).template.spec;
        for (const container of pod.containers) {
          const names = container.env.map((e) => e.name);
          expect({
            container: container.name,
            unknown: names.filter((n) => !known[container.name]?.has(n)),
          }).toEqual({
            container: container.name,
            unknown: [],
          });
        }
      }
    }
    const env = (text: string) =>
      objectsOf(text).flatMap((o) => JSON.stringify(o).match(/"name":"[A-Z_]+"/g) ?? []);
    expect(env(renders.external)).toEqual(
      expect.arrayContaining(
        ['KAFKA_SSL', 'KAFKA_SASL_MECHANISM', 'KAFKA_SASL_PASSWORD_FILE', 'ES_API_KEY', 'ES_CA_FILE'].map(
          (n) => `"name":"${n}"`,
        ),
      ),
    );
  });

  it.each(valueSets)(
    "renders pods whose configuration each service's own loader accepts (%s values)",
    (name) => {
      const results = loadRenderedConfigs(objectsOf(renders[name]), pem);
      expect(results.filter((r) => r.error)).toEqual([]);
      expect(results.map((r) => r.container).sort()).toEqual(['alerter', 'detector', 'indexer', 'sink']);
    },
  );

  it('keeps deploy/kubernetes/kaudit.yaml equal to the chart rendered with its defaults (deploy/render.sh)', () => {
    const committed = readFileSync(join(root, 'deploy/kubernetes/kaudit.yaml'), 'utf8');
    expect(committed.replace(/^#.*\n/gm, '')).toBe(renders.default.replace(/^#.*\n/gm, ''));
  });

  it.each(valueSets)('has every object of the %s render accepted by the API server', (name) => {
    const objects = objectsOf(renders[name]);
    const { run: result, accepted } = dryRun(renders[name]);
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    expect(objects.map(key).filter((k) => !accepted.has(k))).toEqual([]);
    expect(accepted.size).toBe(objects.length);
  });

  it('has kubectl apply -k deploy/kubernetes accepted by the API server', () => {
    const { run: result, accepted } = dryRun('', ['-k', join(root, 'deploy/kubernetes')]);
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    expect(accepted.size).toBe(objectsOf(renders.default).length);
  });

  it('fails when the API server refuses a rendered object', () => {
    // The schema allows a string here (a percentage); the API server does not accept this one.
    const bad = helmTemplate('--set-string', 'sink.pdb.minAvailable=half');
    expect(bad.status).toBe(0);
    const { run: result, accepted } = dryRun(bad.stdout);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/PodDisruptionBudget.*kaudit-sink.*invalid/is);
    expect(accepted.has('poddisruptionbudget/kaudit-sink')).toBe(false);
    // Pod Security "restricted" (the namespace enforces it, and warns for workloads): the renders above
    // passed without a warning; the same Deployment with a root container does not.
    const detector = objectsOf(renders.default).find((o) => key(o) === 'deployment/kaudit-detector')!;
    const asRoot = JSON.parse(JSON.stringify(detector)) as K8sObject & {
      spec: { template: { spec: { securityContext: Record<string, unknown> } } };
    };
    asRoot.metadata.name = 'kaudit-detector-as-root';
    asRoot.spec.template.spec.securityContext = { runAsUser: 0 };
    const warned = dryRun(JSON.stringify(asRoot));
    expect(warned.run.stderr).toContain('would violate PodSecurity "restricted');
  });
});

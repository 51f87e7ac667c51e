import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/**
 * The operator-facing files in policies/ that belong to the sink: the recommended audit policy (checked
 * with kube-apiserver's first-match semantics) and the example webhook kubeconfig.
 */
const policies = join(__dirname, '../../../policies');
const read = (file: string) => parse(readFileSync(join(policies, file), 'utf8'));

interface Rule {
  level: string;
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  namespaces?: string[];
  resources?: Array<{ group?: string; resources?: string[] }>;
  nonResourceURLs?: string[];
}

interface Req {
  user: string;
  groups?: string[];
  verb: string;
  group?: string;
  resource?: string;
  namespace?: string;
  path?: string;
}

const wildcard = (pattern: string, value: string) =>
  pattern === '*' || pattern === value || (pattern.endsWith('*') && value.startsWith(pattern.slice(0, -1)));

/** kube-apiserver's policy rule matching (k8s.io/apiserver/pkg/audit/policy/checker.go), enough for these rules. */
function matches(rule: Rule, req: Req): boolean {
  if (rule.users && !rule.users.includes(req.user)) return false;
  if (rule.userGroups && !rule.userGroups.some((g) => req.groups?.includes(g))) return false;
  if (rule.verbs && !rule.verbs.includes(req.verb)) return false;
  if (req.resource === undefined) {
    if (rule.resources || rule.namespaces) return false;
    return !rule.nonResourceURLs || rule.nonResourceURLs.some((u) => wildcard(u, req.path ?? ''));
  }
  if (rule.nonResourceURLs) return false;
  if (rule.namespaces && !rule.namespaces.includes(req.namespace ?? '')) return false;
  return (
    !rule.resources ||
    rule.resources.some(
      (r) =>
        (r.group ?? '') === (req.group ?? '') &&
        (!r.resources || r.resources.some((x) => wildcard(x, req.resource!))),
    )
  );
}

const levelFor = (policy: { rules: Rule[] }, req: Req) =>
  policy.rules.find((rule) => matches(rule, req))?.level ?? 'None';

describe('sink > policies > audit-policy.yaml', () => {
  const policy = read('audit-policy.yaml');

  it('omits the RequestReceived stage', () => {
    expect(policy).toMatchObject({
      apiVersion: 'audit.k8s.io/v1',
      kind: 'Policy',
      omitStages: ['RequestReceived'],
    });
  });

  it.each<[string, Req, string]>([
    [
      'a human reading a Secret',
      { user: 'alice', verb: 'get', resource: 'secrets', namespace: 'prod' },
      'Metadata',
    ],
    [
      'a kubelet reading a Secret',
      {
        user: 'system:node:n1',
        groups: ['system:nodes'],
        verb: 'get',
        resource: 'secrets',
        namespace: 'prod',
      },
      'Metadata',
    ],
    [
      'the controller manager listing Secrets',
      { user: 'system:kube-controller-manager', verb: 'list', resource: 'secrets' },
      'Metadata',
    ],
    [
      'a ConfigMap update',
      { user: 'ci', verb: 'update', resource: 'configmaps', namespace: 'prod' },
      'Metadata',
    ],
    [
      'a TokenReview',
      {
        user: 'system:kube-apiserver',
        verb: 'create',
        group: 'authentication.k8s.io',
        resource: 'tokenreviews',
      },
      'Metadata',
    ],
    [
      'a TokenRequest',
      {
        user: 'system:node:n1',
        groups: ['system:nodes'],
        verb: 'create',
        resource: 'serviceaccounts/token',
        namespace: 'prod',
      },
      'Metadata',
    ],
    [
      'a lease renewal',
      {
        user: 'system:kube-scheduler',
        verb: 'update',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: 'kube-system',
      },
      'None',
    ],
    [
      'a node status heartbeat',
      { user: 'system:node:n1', groups: ['system:nodes'], verb: 'patch', resource: 'nodes/status' },
      'None',
    ],
    ['a health probe', { user: 'system:anonymous', verb: 'get', path: '/readyz' }, 'None'],
    [
      'kube-proxy watching endpoints',
      { user: 'system:kube-proxy', verb: 'watch', resource: 'endpoints' },
      'None',
    ],
    ['a pod exec', { user: 'alice', verb: 'create', resource: 'pods/exec', namespace: 'prod' }, 'Metadata'],
  ])('logs %s at %s', (_name, req, level) => {
    expect(levelFor(policy, req)).toBe(level);
  });

  it('records no response body, and request bodies only of CertificateSigningRequest writes (public keys)', () => {
    const withBodies = policy.rules.filter((r: Rule) => r.level !== 'None' && r.level !== 'Metadata');
    expect(withBodies.map((r: Rule) => r.level)).toEqual(['Request']);
    expect(withBodies[0]).toMatchObject({
      verbs: ['create', 'update', 'patch'],
      resources: [
        {
          group: 'certificates.k8s.io',
          resources: ['certificatesigningrequests', 'certificatesigningrequests/approval'],
        },
      ],
    });
  });
});

describe('sink > policies > webhook-kubeconfig.yaml', () => {
  it('points the API server at the sink over HTTPS with a client certificate and no token in the URL', () => {
    const kubeconfig = read('webhook-kubeconfig.yaml');
    const server: string = kubeconfig.clusters[0].cluster.server;
    expect(server).toMatch(/^https:\/\/[^?]+\/audit(\/[a-z0-9-]+)?$/);
    expect(kubeconfig.clusters[0].cluster['certificate-authority']).toBeTruthy();
    expect(kubeconfig.users[0].user).toMatchObject({
      'client-certificate': expect.any(String),
      'client-key': expect.any(String),
    });
    expect(kubeconfig['current-context']).toBe(kubeconfig.contexts[0].name);
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileGlob } from '@kaudit/common';
import { isAppError } from '@kaudit/service-kit';
import { buildFinding } from '../test/finding-fixture';
import { createRouter, parseRoutingPolicy } from './routing';

const repoRoot = join(__dirname, '../../..');

const base = `
timezone: UTC
destinations:
  slack: { type: slack, urlFrom: { env: SLACK_URL } }
  siem: { type: webhook, url: 'https://siem.example.com/x', hmacKeyFrom: { env: KEY } }
  hec: { type: splunk-hec, url: 'https://hec.example.com:8088/services/collector/event', tokenFrom: { file: /run/t } }
`;

function errorOf(text: string): string {
  try {
    parseRoutingPolicy(text, 'routing.yaml');
  } catch (error) {
    if (isAppError(error)) {
      expect(error.code).toBe('KAUDIT_ERR_POLICY');
      return error.message;
    }
    throw error;
  }
  throw new Error('expected the policy to be rejected');
}

describe('alerter > routing', () => {
  test('the shipped policies/routing.yaml validates', () => {
    const policy = parseRoutingPolicy(readFileSync(join(repoRoot, 'policies/routing.yaml'), 'utf8'));
    expect(Object.keys(policy.destinations).sort()).toEqual(['siem', 'slack-secops', 'splunk']);
    expect(policy.routes.map((r) => r.name)).toContain('secops-slack');
    expect(policy.routes.find((r) => r.name === 'secops-slack')?.throttle).toEqual({
      maxAlerts: 5,
      window: 600_000,
    });
    expect(policy.defaults.retry?.initialDelay).toBe(1000);
    // "Even if Slack was down for an hour": the default budget is time-based and outlasts that.
    expect(policy.defaults.retry?.retries).toBeUndefined();
    expect(policy.defaults.retry?.maxElapsed).toBeGreaterThan(3_600_000);
    expect(policy.defaults.retry?.maxDelay).toBeLessThanOrEqual(300_000);
  });

  // Every condition of a route's match must hold; any entry of one list may match.
  const policy = parseRoutingPolicy(`${base}
routes:
  - name: everything
    destinations: [hec]
  - name: high-plus
    match: { minSeverity: high }
    destinations: [slack]
  - name: new-ip-in-prod
    match: { rules: [secret-new-source-ip], clusters: ['prod-*'] }
    destinations: [siem, slack]
  - name: kube-system
    match: { namespaces: [kube-system, 'openshift-*'] }
    destinations: [siem]
  - name: ci-bots
    match: { identities: ['system:serviceaccount:ci:*', 'bot-??'], identityKinds: [serviceaccount, user] }
    destinations: [siem]
`);
  const router = createRouter(policy);

  test.each([
    ['low severity matches only the catch-all', { severity: 'low' as const }, ['everything']],
    ['high severity adds high-plus', { severity: 'high' as const }, ['everything', 'high-plus']],
    ['critical is above high', { severity: 'critical' as const }, ['everything', 'high-plus']],
    [
      'rule and cluster glob both hold',
      { severity: 'medium' as const, rule: 'secret-new-source-ip' as const, cluster: 'prod-eu-1' },
      ['everything', 'new-ip-in-prod'],
    ],
    [
      'right rule, wrong cluster',
      { severity: 'medium' as const, rule: 'secret-new-source-ip' as const, cluster: 'staging' },
      ['everything'],
    ],
    [
      'right cluster, wrong rule',
      { severity: 'medium' as const, rule: 'secret-enumeration' as const, cluster: 'prod-eu-1' },
      ['everything'],
    ],
    [
      'namespace list: exact entry',
      {
        severity: 'low' as const,
        objects: [{ namespace: 'default' }, { namespace: 'kube-system', name: 'x' }],
      },
      ['everything', 'kube-system'],
    ],
    [
      'namespace list: glob entry',
      { severity: 'low' as const, objects: [{ namespace: 'openshift-config', name: 'pull-secret' }] },
      ['everything', 'kube-system'],
    ],
    [
      'namespace that matches no pattern',
      { severity: 'low' as const, objects: [{ namespace: 'team-a', name: 'x' }] },
      ['everything'],
    ],
    [
      'a cluster-wide list touches every namespace',
      { severity: 'low' as const, objects: [{}] },
      ['everything', 'kube-system'],
    ],
    [
      'identity glob with *',
      {
        severity: 'low' as const,
        objects: [{ namespace: 'ci', name: 'x' }],
        identity: {
          username: 'system:serviceaccount:ci:deployer',
          kind: 'serviceaccount' as const,
          groups: [],
        },
      },
      ['everything', 'ci-bots'],
    ],
    [
      'identity glob with ? needs exactly one character each',
      {
        severity: 'low' as const,
        objects: [{ namespace: 'ci', name: 'x' }],
        identity: { username: 'bot-7', kind: 'user' as const, groups: [] },
      },
      ['everything'],
    ],
    [
      'identity matches but kind does not',
      {
        severity: 'low' as const,
        objects: [{ namespace: 'ci', name: 'x' }],
        identity: { username: 'bot-42', kind: 'node' as const, groups: [] },
      },
      ['everything'],
    ],
  ])('%s', (_name, overrides, expected) => {
    expect(
      router
        .match(buildFinding({ objects: [{ namespace: 'default', name: 'x' }], ...overrides }))
        .map((r) => r.name),
    ).toEqual(expected);
  });

  test('glob patterns are anchored and treat regex characters literally', () => {
    expect(compileGlob('prod-*').test('prod-eu')).toBe(true);
    expect(compileGlob('prod-*').test('xprod-eu')).toBe(false);
    expect(compileGlob('a.b').test('axb')).toBe(false);
    expect(compileGlob('a.b').test('a.b')).toBe(true);
    expect(compileGlob('(x)+').test('(x)+')).toBe(true);
  });

  test.each([
    [
      'a misspelt key, under its path',
      `${base}\nroutes:\n  - name: r\n    match: { minSeverty: high }\n    destinations: [slack]\n`,
      'routes[0].match: Unrecognized key: "minSeverty"',
    ],
    [
      'a bad severity',
      `${base}\nroutes:\n  - name: r\n    match: { minSeverity: urgent }\n    destinations: [slack]\n`,
      'routes[0].match.minSeverity',
    ],
    [
      'an unknown rule id',
      `${base}\nroutes:\n  - name: r\n    match: { rules: [secret-everything] }\n    destinations: [slack]\n`,
      'routes[0].match.rules[0]',
    ],
    [
      'an unknown destination',
      `${base}\nroutes:\n  - name: r\n    destinations: [slak]\n`,
      'routes[0].destinations[0]: unknown destination "slak" (known: slack, siem, hec)',
    ],
    [
      'a duplicate route',
      `${base}\nroutes:\n  - { name: r, destinations: [slack] }\n  - { name: r, destinations: [siem] }\n`,
      'routes[1].name: duplicate route "r"',
    ],
    [
      'a bad time zone',
      `timezone: Mars/Olympus\n${base.replace('timezone: UTC', '')}\nroutes:\n  - { name: r, destinations: [slack] }\n`,
      'timezone: must be an IANA time zone',
    ],
    [
      'a bad duration',
      `${base}\nroutes:\n  - name: r\n    destinations: [slack]\n    throttle: { maxAlerts: 3, window: soon }\n`,
      'routes[0].throttle.window: must be a duration',
    ],
    [
      'a Slack URL written inline',
      `destinations:\n  s: { type: slack, url: 'https://hooks.slack.com/services/T/B/x' }\nroutes:\n  - { name: r, destinations: [s] }\n`,
      'destinations.s',
    ],
    [
      'a secret reference that is neither env nor file',
      `destinations:\n  s: { type: slack, urlFrom: { vault: x } }\nroutes:\n  - { name: r, destinations: [s] }\n`,
      'destinations.s.urlFrom',
    ],
    [
      'a webhook with neither url nor urlFrom',
      `destinations:\n  w: { type: webhook, hmacKeyFrom: { env: K } }\nroutes:\n  - { name: r, destinations: [w] }\n`,
      'destinations.w: needs exactly one of url or urlFrom',
    ],
    ['no routes', `${base}\nroutes: []\n`, 'routes:'],
    ['broken YAML', 'routes: [\n', 'not valid YAML'],
  ])('rejects %s', (_name, text, expected) => {
    expect(errorOf(text)).toContain(expected);
  });

  test('reports every problem at once', () => {
    const message = errorOf(
      `${base}\nroutes:\n  - name: r\n    match: { minSeverity: urgent }\n    destinations: [nope]\n`,
    );
    expect(message).toContain('routes[0].match.minSeverity');
    expect(message).toContain('routes[0].destinations[0]');
  });
});

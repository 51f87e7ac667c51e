import { composedMappings, defaultPoliciesDir, loadResources, mappedFields } from '@kaudit/es-resources';
import { encodedPattern, loadElasticRules, ruleQuery } from '../test/elastic-rules/conformance';
import { kqlFields, kqlToDsl } from '../test/elastic-rules/kql';

const { rules } = loadElasticRules();
const fields = mappedFields(
  composedMappings(loadResources(defaultPoliciesDir()), 'logs-kubernetes.audit_logs-kaudit'),
);

describe('indexer > Elastic prebuilt Kubernetes rules, written down', () => {
  it('lists each production rule once, with its id, name, query and events', () => {
    expect(new Set(rules.map((rule) => rule.id)).size).toBe(rules.length);
    expect(rules.length).toBe(47);
    for (const rule of rules) {
      expect(rule.name && rule.query && rule.file && rule.fields.length > 0).toBeTruthy();
      expect(rule.trigger.length * rule.nonTrigger.length).toBeGreaterThan(0);
      // A KQL rule runs as written; the others need an equivalent the suite can run.
      if (rule.language === 'kuery') expect(rule.equivalent).toBeUndefined();
      else expect(rule.equivalent?.kql ?? rule.equivalent?.sequence).toBeDefined();
    }
  });

  it.each(rules.filter((r) => r.language === 'kuery').map((r) => [r.name, r] as const))(
    '%s: every field its KQL reads is written down',
    (_name, rule) => {
      expect(kqlFields(rule.query).filter((field) => !rule.fields.includes(field))).toEqual([]);
      expect(() => ruleQuery(rule)).not.toThrow();
    },
  );

  it.each(rules.map((r) => [r.name, r] as const))(
    '%s: every field it reads is mapped, with a type its language reads',
    (_name, rule) => {
      const unusable = rule.fields
        .filter((field) => !(rule.misses ?? '').includes(field))
        .map((field) => [field, fields.leaves.get(field)] as const)
        // EQL refuses flattened fields and ES|QL cannot read their keys: keyword leaves it is.
        .filter(([, type]) => type === undefined || type === 'flattened');
      expect(unusable).toEqual([]);
    },
  );
});

describe('indexer > KQL to Query DSL (test/elastic-rules/kql.ts)', () => {
  it.each([
    ['a.b:"x"', { match_phrase: { 'a.b': 'x' } }],
    ['a:x', { match: { a: 'x' } }],
    ['a:*', { exists: { field: 'a' } }],
    ['a:x*', { wildcard: { a: { value: 'x*' } } }],
    ['a:system\\:node\\:*', { wildcard: { a: { value: 'system:node:*' } } }],
    [
      'a:(x or "y")',
      { bool: { should: [{ match: { a: 'x' } }, { match_phrase: { a: 'y' } }], minimum_should_match: 1 } },
    ],
    [
      'a:(* and not (*k/$Format))',
      {
        bool: {
          filter: [
            { exists: { field: 'a' } },
            { bool: { must_not: [{ wildcard: { a: { value: '*k/$Format' } } }] } },
          ],
        },
      },
    ],
    [
      'not a:x and b:y',
      { bool: { filter: [{ bool: { must_not: [{ match: { a: 'x' } }] } }, { match: { b: 'y' } }] } },
    ],
    [
      'k.annotations.authorization_k8s_io/decision:"allow"',
      { match_phrase: { 'k.annotations.authorization_k8s_io/decision': 'allow' } },
    ],
  ])('%s', (query, dsl) => {
    expect(kqlToDsl(query)).toEqual(dsl);
  });

  it.each(['a:(x', 'free text', 'a:"x'])('refuses %j', (query) => {
    expect(() => kqlToDsl(query)).toThrow(/KQL/);
  });

  it('turns a pattern over a decoded URI into one over the encoded URI', () => {
    expect(encodedPattern('/dev/tcp/[^/]+')).toBe('(/|%2[Ff])dev(/|%2[Ff])tcp(/|%2[Ff])[^/]+');
    expect(new RegExp(`^${encodedPattern('.*0>&1.*')}$`).test('bash+-i+0%3E%261')).toBe(true);
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatFieldPath, parseFieldPath } from './path';
import { DEFAULT_REDACTION_POLICY, parseRedactionPolicy, parseRedactionPolicyYaml } from './policy';

const shipped = join(__dirname, '../../../policies/redaction.yaml');

describe('redaction > policy', () => {
  it('ships policies/redaction.yaml equal to the built-in default', () => {
    expect(parseRedactionPolicyYaml(readFileSync(shipped, 'utf8'), shipped)).toEqual(
      DEFAULT_REDACTION_POLICY,
    );
  });

  it.each([
    [{ rules: [] }, /apiVersion: must be kaudit.dev\/v1/],
    [
      {
        apiVersion: 'kaudit.dev/v1',
        kind: 'RedactionPolicy',
        rules: [{ resource: 'Secrets', paths: ['data'] }],
      },
      /rules\.0\.resource: must be a lower-case plural/,
    ],
    [
      {
        apiVersion: 'kaudit.dev/v1',
        kind: 'RedactionPolicy',
        rules: [{ resource: 'secrets', paths: ['data', 'a..b'] }],
      },
      /rules\.0\.paths\.1: invalid path/,
    ],
    [
      { apiVersion: 'kaudit.dev/v1', kind: 'RedactionPolicy', rules: [{ resource: 'secrets', paths: [] }] },
      /rules\.0\.paths: must list at least one path/,
    ],
    [
      {
        apiVersion: 'kaudit.dev/v1',
        kind: 'RedactionPolicy',
        rules: [{ resource: 'secrets', path: ['data'] }],
      },
      /rules\.0.*path/,
    ],
    [
      {
        apiVersion: 'kaudit.dev/v1',
        kind: 'RedactionPolicy',
        rules: [
          { resource: 'secrets', paths: ['data'] },
          { group: '', resource: 'secrets', paths: ['x'] },
        ],
      },
      /rules\.1: a rule for \/secrets\/ already exists/,
    ],
  ])('rejects %j naming the bad field', (value, message) => {
    expect(() => parseRedactionPolicy(value, 'policies/redaction.yaml')).toThrow(message);
    expect(() => parseRedactionPolicy(value, 'policies/redaction.yaml')).toThrow(
      /^policies\/redaction\.yaml: /,
    );
  });

  it('names the file when the YAML itself is broken', () => {
    expect(() => parseRedactionPolicyYaml('rules: [\n', '/etc/kaudit/bad.yaml')).toThrow(
      '/etc/kaudit/bad.yaml: not valid YAML',
    );
  });

  it('defaults group to core and last-applied stripping to on', () => {
    const policy = parseRedactionPolicyYaml(
      'apiVersion: kaudit.dev/v1\nkind: RedactionPolicy\nrules:\n  - {resource: configmaps, paths: [data]}\n',
    );
    expect(policy.stripLastAppliedConfiguration).toBe(true);
    expect(policy.rules[0]).toEqual({ group: '', resource: 'configmaps', paths: ['data'] });
  });
});

describe('redaction > paths', () => {
  it.each([
    ['data', ['data']],
    ['status.token', ['status', 'token']],
    [
      'metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]',
      ['metadata', 'annotations', 'kubectl.kubernetes.io/last-applied-configuration'],
    ],
    ['spec["a]b"].c', ['spec', 'a]b', 'c']],
  ])('parses %s and formats it back', (text, segments) => {
    expect(parseFieldPath(text)).toEqual(segments);
    expect(formatFieldPath('', segments)).toBe(text);
  });

  it.each(['', 'a..b', '.a', 'a.', 'a[b]', 'a["b"', 'a[""]', 'a b'])('rejects %j', (text) => {
    expect(() => parseFieldPath(text)).toThrow();
  });
});

import { globMatcher } from '@kaudit/common';
import fc from 'fast-check';
import { addressSet, classify, identityOf, sourceIPOf } from './identity';

describe('detection > identity', () => {
  it.each([
    ['alice@example.com', [], 'user', undefined],
    ['system:serviceaccount:ci:deployer', [], 'serviceaccount', 'ci'],
    ['system:node:ip-10-0-18-7.us-east-2.compute.internal', [], 'node', undefined],
    ['system:kube-controller-manager', [], 'system', undefined],
    ['system:anonymous', [], 'anonymous', undefined],
    ['someone', ['system:unauthenticated'], 'anonymous', undefined],
  ])('classifies %s', (username, groups, kind, namespace) => {
    const result = classify(username, groups);
    expect(result.kind).toBe(kind);
    expect(result.namespace).toBe(namespace);
  });

  it('acts as the impersonated user and keeps the impersonator', () => {
    const identity = identityOf({
      user: { username: 'system:admin', groups: ['system:masters'] },
      impersonatedUser: { username: 'alice', groups: ['system:authenticated'] },
    });
    expect(identity).toEqual({
      username: 'alice',
      kind: 'user',
      groups: ['system:authenticated'],
      impersonator: 'system:admin',
    });
  });

  it.each([
    [
      'takes the last entry: the rest is client-controlled X-Forwarded-For',
      ['203.0.113.10', '198.51.100.7'],
      [],
      '198.51.100.7',
    ],
    ['walks back past a trusted proxy', ['198.51.100.7', '192.0.2.1'], ['192.0.2.1'], '198.51.100.7'],
    [
      'walks back past a chain of trusted proxies',
      ['198.51.100.7', '192.0.2.9', '192.0.2.1'],
      ['192.0.2.0/24'],
      '198.51.100.7',
    ],
    [
      'stops at the first untrusted address',
      ['6.6.6.6', '198.51.100.7', '192.0.2.1'],
      ['192.0.2.1'],
      '198.51.100.7',
    ],
    [
      'keeps the first entry when everything is a proxy',
      ['192.0.2.1', '192.0.2.2'],
      ['192.0.2.0/24'],
      '192.0.2.1',
    ],
    ['matches IPv4-mapped IPv6 proxies', ['198.51.100.7', '::ffff:192.0.2.1'], ['192.0.2.1'], '198.51.100.7'],
    ['IPv6', ['2001:db8::1'], [], '2001:db8::1'],
  ])('source IP %s', (_name, sourceIPs, proxies, expected) => {
    expect(sourceIPOf(sourceIPs, addressSet(proxies))).toBe(expected);
  });

  it('has no source IP without sourceIPs', () => {
    expect(sourceIPOf(undefined, addressSet([]))).toBeUndefined();
  });

  it('matches CIDRs of both families', () => {
    const set = addressSet(['10.0.0.0/8', 'fd00::/8']);
    expect(set.has('10.200.3.4')).toBe(true);
    expect(set.has('::ffff:10.1.1.1')).toBe(true);
    expect(set.has('fd12::5')).toBe(true);
    expect(set.has('11.0.0.1')).toBe(false);
    expect(set.has('not-an-ip')).toBe(false);
  });

  it('matches glob allow-lists', () => {
    const allowed = globMatcher(['system:serviceaccount:kube-system:*', 'vault.example.com']);
    expect(allowed('system:serviceaccount:kube-system:generic-garbage-collector')).toBe(true);
    expect(allowed('vault.example.com')).toBe(true);
    expect(allowed('vaultXexample.com')).toBe(false);
    expect(allowed(undefined)).toBe(false);
  });
});

describe('detection > identity > globMatcher without backtracking', () => {
  const viaRegex = (pattern: string, value: string) =>
    new RegExp(
      `^${pattern
        .split('*')
        .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    ).test(value);

  it('agrees with the regular expression it replaces', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[ab:*]{0,8}$/),
        fc.stringMatching(/^[ab:]{0,12}$/),
        (pattern, value) => {
          expect(globMatcher([pattern])(value)).toBe(viaRegex(pattern, value));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('decides a 300,000-character username that almost matches a many-star pattern', () => {
    const matcher = globMatcher(['system:serviceaccount:*:*:*:x']);
    expect(matcher(`system:serviceaccount:${'a:'.repeat(150_000)}y`)).toBe(false);
    expect(matcher(`system:serviceaccount:${'a:'.repeat(150_000)}x`)).toBe(true);
  });
});

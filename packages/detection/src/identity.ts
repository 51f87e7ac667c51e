import type { AuditEvent, IdentityKind } from '@kaudit/audit-schema';
import ipaddr from 'ipaddr.js';

export interface Identity {
  username: string;
  kind: IdentityKind;
  groups: string[];
  /** The authenticated user that impersonated `username`, when there was one. */
  impersonator?: string;
  /** Service account namespace. */
  namespace?: string;
}

const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';

/** The identity a request acted as (the impersonated one when present) and what kind it is. */
export function identityOf(event: Pick<AuditEvent, 'user' | 'impersonatedUser'>): Identity {
  const acting = event.impersonatedUser ?? event.user;
  const groups = acting.groups ?? [];
  const { kind, namespace } = classify(acting.username, groups);
  // Every field always present (undefined when absent): one hidden class for every identity, so the
  // rules' and baselines' property reads stay monomorphic. JSON leaves the undefined ones out.
  return {
    username: acting.username,
    kind,
    groups,
    impersonator: event.impersonatedUser ? event.user.username : undefined,
    namespace,
  };
}

export function classify(
  username: string,
  groups: readonly string[] = [],
): Pick<Identity, 'username' | 'kind' | 'namespace'> {
  if (username === 'system:anonymous' || groups.includes('system:unauthenticated')) {
    return { username, kind: 'anonymous' };
  }
  if (username.startsWith(SERVICE_ACCOUNT_PREFIX)) {
    const rest = username.slice(SERVICE_ACCOUNT_PREFIX.length);
    const colon = rest.indexOf(':');
    return colon > 0
      ? { username, kind: 'serviceaccount', namespace: rest.slice(0, colon) }
      : { username, kind: 'system' };
  }
  if (username.startsWith('system:node:')) return { username, kind: 'node' };
  if (username.startsWith('system:')) return { username, kind: 'system' };
  return { username, kind: 'user' };
}

export const isHuman = (kind: IdentityKind): boolean => kind === 'user';

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** CIDR lists parsed once; addresses are matched after unwrapping IPv4-mapped IPv6 (::ffff:10.0.0.1). */
export interface AddressSet {
  has(address: string): boolean;
  readonly size: number;
}

const ADDRESS_CACHE = 16_384;

export function addressSet(cidrs: readonly string[]): AddressSet {
  const ranges: Range[] = cidrs.map((text) => {
    if (text.includes('/')) {
      const [address, bits] = ipaddr.parseCIDR(text);
      return [
        normalize(address),
        address.kind() === 'ipv6' && normalize(address).kind() === 'ipv4' ? bits - 96 : bits,
      ];
    }
    const address = normalize(ipaddr.parse(text));
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  });
  // A cluster's requests come from few addresses: parsing each once (ipaddr.js parses with regular
  // expressions) keeps the per-request cost a map lookup. Bounded, cleared when full.
  const answers = new Map<string, boolean>();
  return {
    size: ranges.length,
    has(text: string): boolean {
      if (ranges.length === 0) return false;
      let answer = answers.get(text);
      if (answer === undefined) {
        const address = parseAddress(text);
        answer =
          address !== undefined &&
          ranges.some(([base, bits]) => base.kind() === address.kind() && address.match(base, bits));
        if (answers.size >= ADDRESS_CACHE) answers.clear();
        answers.set(text, answer);
      }
      return answer;
    },
  };
}

function normalize(address: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
    ? (address as ipaddr.IPv6).toIPv4Address()
    : address;
}

function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (!ipaddr.isValid(text)) return undefined;
  return normalize(ipaddr.parse(text));
}

/**
 * The address the API server saw the request come from: the LAST entry of sourceIPs (the API server
 * appends the peer address; everything before it comes from X-Forwarded-For, which the client controls),
 * walking back past proxies the policy trusts.
 */
export function sourceIPOf(
  sourceIPs: readonly string[] | undefined,
  trustedProxies: AddressSet,
): string | undefined {
  if (!sourceIPs || sourceIPs.length === 0) return undefined;
  let index = sourceIPs.length - 1;
  if (trustedProxies.size > 0) {
    while (index > 0 && trustedProxies.has(sourceIPs[index]!)) index--;
  }
  return sourceIPs[index];
}

/** Whether two addresses are in the same network of `bits.ipv4` / `bits.ipv6` prefix bits. */
export function sameNetwork(a: string, b: string, bits: { ipv4: number; ipv6: number }): boolean {
  const x = parseAddress(a);
  const y = parseAddress(b);
  if (!x || !y || x.kind() !== y.kind()) return false;
  return x.match(y, x.kind() === 'ipv4' ? bits.ipv4 : bits.ipv6);
}

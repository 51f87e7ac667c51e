import type { DestinationSpec, RoutingPolicy } from './routing';
import { resolveSecret, type Secret, type SecretSource } from './secrets';

export type ResolvedUrl = { url: string } | { urlSecret: Secret };

/** A destination of routing.yaml with its secrets read: what destinations.ts builds a sender from. */
export interface ResolvedDestination {
  name: string;
  spec: DestinationSpec;
  secrets: { url: ResolvedUrl; credential?: Secret };
}

/**
 * Reads every destination's secrets (config.ts, at load time, so a missing one is reported with the
 * other configuration problems); reports all missing secrets at once, by variable or file name.
 */
export function resolveDestinationSecrets(
  policy: RoutingPolicy,
  source: SecretSource,
): { resolved: ResolvedDestination[]; problems: string[] } {
  const problems: string[] = [];
  const resolved: ResolvedDestination[] = [];
  for (const [name, spec] of Object.entries(policy.destinations)) {
    const at = `destinations.${name}`;
    let url: ResolvedUrl | undefined;
    if (spec.type !== 'slack' && spec.url !== undefined) url = { url: spec.url };
    else {
      const secret = resolveSecret(spec.urlFrom!, source);
      if (secret.problem) problems.push(`${at}.urlFrom: ${secret.problem}`);
      else if (!/^https?:\/\//.test(secret.secret!.reveal()))
        problems.push(`${at}.urlFrom: is not an http(s) URL`);
      else url = { urlSecret: secret.secret! };
    }
    let credential: Secret | undefined;
    if (spec.type !== 'slack') {
      const field = spec.type === 'webhook' ? 'hmacKeyFrom' : 'tokenFrom';
      const secret = resolveSecret(spec.type === 'webhook' ? spec.hmacKeyFrom : spec.tokenFrom, source);
      if (secret.problem) problems.push(`${at}.${field}: ${secret.problem}`);
      credential = secret.secret;
    }
    if (url && (spec.type === 'slack' || credential))
      resolved.push({ name, spec, secrets: { url, ...(credential ? { credential } : {}) } });
  }
  return { resolved, problems };
}

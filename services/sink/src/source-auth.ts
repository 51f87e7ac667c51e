import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Logger } from '@kaudit/service-kit';
import { createLocalJWKSet, type JSONWebKeySet, errors as joseErrors, jwtVerify } from 'jose';
import { createTokenStore, matchToken, type TokenEntry } from './auth';
import type { SinkConfig } from './config';

/**
 * Credentials of the managed-cluster sources (docs/sources.md):
 * - Firehose copies the stream's access key verbatim into `X-Amz-Firehose-Access-Key`: matched in
 *   constant time against SINK_FIREHOSE_ACCESS_KEY_FILE (the token file's format: `<key> [cluster]`).
 * - A Pub/Sub push carries `Authorization: Bearer <OIDC JWT>` signed by Google (RS256, issuer
 *   accounts.google.com, audience as configured on the subscription, `email` = the push service
 *   account): verified by `jose` against the JWKS file SINK_PUBSUB_JWKS_FILE. For trials, a shared
 *   token in the URL (`?token=`, SINK_PUBSUB_TOKEN_FILE) instead: weaker, since URLs end up in logs and
 *   the token never expires.
 * Results name no credential, only its kind and line.
 */
export type SourceAuth =
  | { ok: true; subject: string; cluster: string | undefined }
  | { ok: false; status: 401 | 403; reason: string };

export const FIREHOSE_ACCESS_KEY_HEADER = 'x-amz-firehose-access-key';
export const GOOGLE_ISSUERS = ['accounts.google.com', 'https://accounts.google.com'];

export function checkFirehoseKey(req: IncomingMessage, keys: () => readonly TokenEntry[]): SourceAuth {
  const header = req.headers[FIREHOSE_ACCESS_KEY_HEADER];
  if (typeof header !== 'string' || header === '')
    return { ok: false, status: 401, reason: 'X-Amz-Firehose-Access-Key is required' };
  const entry = matchToken(keys(), header);
  if (!entry) return { ok: false, status: 401, reason: 'X-Amz-Firehose-Access-Key is not valid' };
  return { ok: true, subject: `firehose-key#${entry.line}`, cluster: entry.cluster };
}

export interface PubSubAuthOptions {
  /** The current JWKS (Google's signing keys), or undefined when OIDC is off. */
  jwks: (() => ReturnType<typeof createLocalJWKSet>) | undefined;
  audience: string | undefined;
  /** The push subscription's service account; when set, the token's verified `email` must be it. */
  serviceAccount: string | undefined;
  /** Shared URL tokens, or undefined when off. */
  urlTokens: (() => readonly TokenEntry[]) | undefined;
}

export async function checkPubSubPush(
  req: IncomingMessage,
  url: URL,
  options: PubSubAuthOptions,
): Promise<SourceAuth> {
  const header = req.headers.authorization;
  const bearer = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
  if (bearer !== undefined && options.jwks) {
    try {
      const { payload } = await jwtVerify(bearer, options.jwks(), {
        issuer: GOOGLE_ISSUERS,
        ...(options.audience !== undefined ? { audience: options.audience } : {}),
        algorithms: ['RS256'],
        clockTolerance: 60,
      });
      const email = typeof payload.email === 'string' ? payload.email : undefined;
      if (
        options.serviceAccount !== undefined &&
        (email !== options.serviceAccount || payload.email_verified !== true)
      )
        return { ok: false, status: 403, reason: 'push token is for another service account' };
      return { ok: true, subject: `oidc:${email ?? String(payload.sub)}`, cluster: undefined };
    } catch (error) {
      return { ok: false, status: 401, reason: `push token is not valid (${joseReason(error)})` };
    }
  }
  const token = url.searchParams.get('token');
  if (token !== null && options.urlTokens) {
    const entry = matchToken(options.urlTokens(), token);
    if (!entry) return { ok: false, status: 401, reason: 'URL token is not valid' };
    return { ok: true, subject: `url-token#${entry.line}`, cluster: entry.cluster };
  }
  return {
    ok: false,
    status: 401,
    reason: options.jwks
      ? 'a Pub/Sub push OIDC token (Authorization: Bearer) is required'
      : 'a URL token (?token=) is required',
  };
}

/** The kind of failure only: jose's messages can quote claims. */
function joseReason(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `claim ${error.claim} rejected`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'signed by an unknown key';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  return 'malformed';
}

/** A JWKS file read now and on reload(); a bad new file keeps the old keys. */
export function createJwksStore(file: string, logger: Logger) {
  const load = () => createLocalJWKSet(parseJwks(readFileSync(file, 'utf8')));
  let jwks = load();
  return {
    current: () => jwks,
    reload() {
      try {
        jwks = load();
        logger.info({ component: 'auth', file }, 'Pub/Sub JWKS reloaded');
      } catch (err) {
        logger.warn(
          { component: 'auth', file, err: { message: (err as Error).message } },
          'JWKS file unreadable: keeping the previous keys',
        );
      }
    },
  };
}

export function parseJwks(text: string): JSONWebKeySet {
  const doc = JSON.parse(text) as { keys?: unknown };
  if (!Array.isArray(doc.keys) || doc.keys.length === 0)
    throw new Error('JWKS file must be {"keys":[…]} with at least one key');
  return doc as JSONWebKeySet;
}

/**
 * The sources' credential files, read now and re-read on change (server.ts watches `watch`): what the
 * routes take (source-routes.ts); a route whose credential is not configured stays off.
 */
export function loadSourceCredentials(config: SinkConfig['sources'], logger: Logger) {
  const firehose = config.firehoseAccessKeyFile
    ? createTokenStore(config.firehoseAccessKeyFile, logger, 'Firehose access keys')
    : undefined;
  const urlTokens = config.pubsubTokenFile
    ? createTokenStore(config.pubsubTokenFile, logger, 'Pub/Sub URL tokens')
    : undefined;
  const jwks = config.pubsubJwksFile ? createJwksStore(config.pubsubJwksFile, logger) : undefined;
  const watch: Array<{ file: string; onChange: () => void }> = [];
  if (firehose && config.firehoseAccessKeyFile)
    watch.push({ file: config.firehoseAccessKeyFile, onChange: firehose.reload });
  if (urlTokens && config.pubsubTokenFile)
    watch.push({ file: config.pubsubTokenFile, onChange: urlTokens.reload });
  if (jwks && config.pubsubJwksFile) watch.push({ file: config.pubsubJwksFile, onChange: jwks.reload });
  const pubsub: PubSubAuthOptions | undefined =
    jwks || urlTokens
      ? {
          jwks: jwks?.current,
          audience: config.pubsubAudience,
          serviceAccount: config.pubsubServiceAccount,
          urlTokens: urlTokens?.current,
        }
      : undefined;
  return { routes: { firehoseKeys: firehose?.current, pubsub }, watch };
}

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { AppError, type ErrorCode, type Logger } from '@kaudit/service-kit';
import { CLUSTER_NAME } from './config';

/**
 * Who is posting. kube-apiserver authenticates to its webhook with a client certificate and/or a
 * bearer token from the webhook kubeconfig; either valid credential is enough when both are
 * configured, also when the other one presented is wrong (a stale token beside a good certificate
 * must not cost the audit trail; the answer's `note` says so, for an info log). A certificate subject
 * or a token may name the cluster its events belong to.
 */
export interface ClientIdentity {
  method: 'mtls' | 'token' | 'none';
  /** Certificate CN, or the token's line number in the token file (never the token). */
  subject: string;
  cluster: string | undefined;
}

export type AuthResult =
  | { ok: true; identity: ClientIdentity; note?: string }
  | {
      ok: false;
      status: 401 | 403;
      code: ErrorCode;
      reason: string;
      /** The WWW-Authenticate challenge of a 401: `Bearer` when tokens are accepted, else none. */
      challenge?: string;
    };

export type Authenticator = (req: IncomingMessage) => AuthResult;

export interface TokenEntry {
  digest: Buffer;
  cluster: string | undefined;
  line: number;
}

/**
 * Token file: one token per line, optionally followed by whitespace and the cluster it writes for;
 * blank lines and `#` comments are skipped. Tokens are kept only as SHA-256 digests.
 */
export function parseTokenFile(text: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [token, cluster, extra] = line.split(/\s+/);
    if (extra !== undefined || (cluster !== undefined && !CLUSTER_NAME.test(cluster)))
      throw new AppError('KAUDIT_ERR_CONFIG', `line ${index + 1}: expected "<token>" or "<token> <cluster>"`);
    if (token!.length < 16)
      throw new AppError('KAUDIT_ERR_CONFIG', `line ${index + 1}: token is shorter than 16 characters`);
    entries.push({ digest: sha256(token!), cluster, line: index + 1 });
  }
  if (entries.length === 0) throw new AppError('KAUDIT_ERR_CONFIG', 'no tokens in the file');
  return entries;
}

/** Holds the current tokens; reload() re-reads the file and keeps the old set if the new one is bad. */
export function createTokenStore(file: string, logger: Logger, what = 'bearer tokens') {
  let entries = parseTokenFile(readFileSync(file, 'utf8'));
  return {
    current: () => entries,
    reload() {
      try {
        entries = parseTokenFile(readFileSync(file, 'utf8'));
        logger.info({ component: 'auth', file, tokens: entries.length }, `${what} reloaded`);
      } catch (err) {
        logger.warn(
          { component: 'auth', file, err: { message: (err as Error).message } },
          `${what}: file unreadable: keeping the previous ones`,
        );
      }
    },
  };
}

/** Constant time over all entries: compares digests (equal length) and never stops at the first match. */
export function matchToken(entries: readonly TokenEntry[], presented: string): TokenEntry | undefined {
  const digest = sha256(presented);
  let found: TokenEntry | undefined;
  for (const entry of entries) if (timingSafeEqual(entry.digest, digest) && !found) found = entry;
  return found;
}

export interface AuthOptions {
  /** A client CA is configured: certificates it signed authenticate. */
  mtls: boolean;
  /** CN -> cluster; empty = any CN the CA signed. */
  allowedSubjects: ReadonlyMap<string, string | undefined>;
  /** Bearer tokens, or undefined when token auth is off. */
  tokens: (() => readonly TokenEntry[]) | undefined;
  /** SINK_INSECURE_DEV with no client auth configured. */
  allowAnonymous: boolean;
}

export function createAuthenticator(options: AuthOptions): Authenticator {
  const unauthenticated = (reason: string): AuthResult => ({
    ok: false,
    status: 401,
    code: 'KAUDIT_ERR_UNAUTHENTICATED',
    reason,
    ...(options.tokens ? { challenge: 'Bearer' } : {}),
  });
  // Names only what this configuration accepts: a caller is not told to try a credential that cannot work.
  const required =
    options.mtls && options.tokens
      ? 'a client certificate or a bearer token is required'
      : options.mtls
        ? 'a client certificate is required'
        : options.tokens
          ? 'a bearer token is required'
          : 'this sink accepts no credentials (no client CA and no token file configured)';

  /** undefined when no token was presented (or token auth is off). */
  const checkToken = (req: IncomingMessage): AuthResult | undefined => {
    const header = req.headers.authorization;
    if (!options.tokens || header === undefined) return undefined;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const entry = match ? matchToken(options.tokens(), match[1]!) : undefined;
    if (!entry) return unauthenticated('bearer token is not valid');
    return {
      ok: true,
      identity: { method: 'token', subject: `token#${entry.line}`, cluster: entry.cluster },
    };
  };

  /** undefined when no client certificate was presented (or mTLS is off). */
  const checkCertificate = (req: IncomingMessage): AuthResult | undefined => {
    const socket = req.socket as Partial<TLSSocket>;
    if (!options.mtls || !socket.encrypted || typeof socket.getPeerCertificate !== 'function')
      return undefined;
    const cert = socket.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0) return undefined;
    if (!socket.authorized)
      return unauthenticated(
        `client certificate not accepted: ${String(socket.authorizationError ?? 'untrusted')}`,
      );
    const cn = cert.subject?.CN;
    if (typeof cn !== 'string') return unauthenticated('client certificate has no single subject CN');
    if (options.allowedSubjects.size > 0 && !options.allowedSubjects.has(cn))
      return {
        ok: false,
        status: 403,
        code: 'KAUDIT_ERR_FORBIDDEN',
        reason: `certificate subject CN=${cn} is not allowed`,
      };
    return {
      ok: true,
      identity: { method: 'mtls', subject: `CN=${cn}`, cluster: options.allowedSubjects.get(cn) },
    };
  };

  return (req) => {
    // A valid token decides (as before) and the certificate is not looked at.
    const token = checkToken(req);
    if (token?.ok) return token;
    const cert = checkCertificate(req);
    if (cert?.ok)
      return token
        ? { ...cert, note: 'bearer token is not valid: authenticated by the client certificate instead' }
        : cert;
    if (cert) return token ? { ...cert, reason: `bearer token is not valid; ${cert.reason}` } : cert;
    if (token) return token;
    if (options.allowAnonymous)
      return { ok: true, identity: { method: 'none', subject: 'anonymous', cluster: undefined } };
    return unauthenticated(required);
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

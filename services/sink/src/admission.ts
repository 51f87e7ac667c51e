import type { IncomingMessage } from 'node:http';
import { AppError, type Logger } from '@kaudit/service-kit';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Authenticator, ClientIdentity } from './auth';
import { CLUSTER_NAME } from './config';
import type { Delivery } from './delivery';
import type { SinkMetrics } from './metrics';

/**
 * What POST /audit checks before a byte of the body is read, so that a refusal costs a header parse
 * and not a 48 MiB read, decompression and JSON parse: authenticate (first, before the URL is even
 * decoded: an unauthenticated caller learns nothing from the sink but 401/403), then the cluster in
 * the URL, then room in the spool for a batch of the usual size (delivery.admit()). A client that sent
 * `Expect: 100-continue` gets its `100 Continue` only after all of them passed (continueIfAwaited),
 * so a refused one never sends its body at all.
 */
export interface AdmissionDeps {
  logger: Logger;
  metrics: SinkMetrics;
  authenticate: Authenticator;
  delivery: Pick<Delivery, 'admit'>;
  /** Cluster for requests whose URL and credentials name none (SINK_CLUSTER_NAME). */
  clusterName: string;
}

/** Set on res.locals for the handlers after admission. */
export interface AdmittedLocals {
  identity: ClientIdentity;
  cluster: string;
}

export function createAdmission(deps: AdmissionDeps): RequestHandler {
  const { metrics } = deps;
  const logger = deps.logger.child({ component: 'http' });
  return (req: Request, res: Response, next: NextFunction) => {
    const auth = deps.authenticate(req);
    if (!auth.ok) {
      if (auth.challenge) res.set('WWW-Authenticate', auth.challenge);
      metrics.errors.inc({ stage: 'auth', type: auth.code });
      return next(new AppError(auth.code, auth.reason, { statusCode: auth.status }));
    }
    if (auth.note)
      logger.info({ client: auth.identity.subject, remote: req.socket.remoteAddress }, auth.note);

    const cluster = resolveCluster(clusterInPath(req.path), auth.identity, deps.clusterName);
    if (!cluster.ok) return next(cluster.error);

    const admission = deps.delivery.admit();
    if (!admission.ok) {
      metrics.errors.inc({ stage: 'admission', type: 'spool_full' });
      roomRefusals.add(res);
      return next(admission.error);
    }
    res.once('close', () => admission.release());
    Object.assign(res.locals, { identity: auth.identity, cluster: cluster.name } satisfies AdmittedLocals);
    next();
  };
}

const roomRefusals = new WeakSet<Response>();

/** The answer is admission's refusal for want of spool room (app.ts logs those summed up). */
export function isRoomRefusal(res: Response): boolean {
  return roomRefusals.has(res);
}

/**
 * Requests whose `100 Continue` the server held back (server.ts handles 'checkContinue' by marking the
 * request and passing it to the app). Node answers 100 on its own for every other server, so only
 * these get one from us.
 */
const awaitingContinue = new WeakSet<IncomingMessage>();

export function markAwaitingContinue(req: IncomingMessage): void {
  awaitingContinue.add(req);
}

/** The last check before the body is read: admitted, so the client may send it now. */
export const continueIfAwaited: RequestHandler = (req, res, next) => {
  if (awaitingContinue.delete(req)) res.writeContinue();
  next();
};

/** The route: /audit or /audit/<cluster> (a trailing slash allowed), matched without decoding. */
export const AUDIT_PATH = /^\/audit(?:\/[^/]+)?\/?$/i;

/** The raw `<cluster>` part of the path, or undefined for /audit; decoded only here, after authentication. */
function clusterInPath(path: string): string | undefined {
  const raw = path.replace(/^\/audit\/?/i, '').replace(/\/$/, '');
  return raw === '' ? undefined : raw;
}

type ClusterResult = { ok: true; name: string } | { ok: false; error: AppError };

const badClusterInPath = () =>
  new AppError('KAUDIT_ERR_BAD_REQUEST', 'cluster in the URL must be 1-63 letters, digits, "-", "_" or "."', {
    statusCode: 400,
  });

/** The URL may name the cluster; a credential that names one wins, and a conflict is refused. */
function resolveCluster(
  rawPath: string | undefined,
  identity: ClientIdentity,
  fallback: string,
): ClusterResult {
  let fromPath: string | undefined;
  if (rawPath !== undefined) {
    try {
      fromPath = decodeURIComponent(rawPath);
    } catch {
      return { ok: false, error: badClusterInPath() };
    }
    if (!CLUSTER_NAME.test(fromPath)) return { ok: false, error: badClusterInPath() };
  }
  if (identity.cluster !== undefined && fromPath !== undefined && fromPath !== identity.cluster)
    return {
      ok: false,
      error: new AppError(
        'KAUDIT_ERR_FORBIDDEN',
        `${identity.subject} may only post for cluster ${identity.cluster}`,
        {
          statusCode: 403,
        },
      ),
    };
  return { ok: true, name: identity.cluster ?? fromPath ?? fallback };
}

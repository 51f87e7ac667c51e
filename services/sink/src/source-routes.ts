import {
  type DecodedItem,
  decodeAuditText,
  firehoseRecordItems,
  firehoseResponse,
  parseFirehoseRequest,
  parsePubSubPush,
} from '@kaudit/audit-schema';
import { AppError, isAppError, type Logger } from '@kaudit/service-kit';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { TokenEntry } from './auth';
import { CLUSTER_NAME } from './config';
import { type Delivery, deliverInTime } from './delivery';
import { createBatch, type IngestOptions, type IngestResult } from './ingest';
import type { SinkMetrics } from './metrics';
import { readWholeBody } from './read-body';
import { checkFirehoseKey, checkPubSubPush, type PubSubAuthOptions, type SourceAuth } from './source-auth';

/**
 * The managed-cluster sources (docs/sources.md), beside POST /audit and with its guarantees:
 * - `POST /firehose/eks/<cluster>`: Amazon Data Firehose HTTP endpoint delivery of a CloudWatch Logs
 *   subscription (EKS). Every answer is Firehose's `{requestId, timestamp[, errorMessage]}`; 200 only
 *   once every event of every record is on Kafka or in the spool, anything else makes Firehose retry.
 * - `POST /pubsub/gke/<cluster>`: a Pub/Sub push of a Cloud Logging sink (GKE); 200 once stored, 503
 *   (Pub/Sub redelivers on any non-2xx) when not.
 * Order as for /audit: authenticate before anything else, the cluster, room in the spool, then the
 * body. Items are redacted and enveloped by the same createBatch; an item whose input names another
 * cluster than the route's is dead-lettered (a stream or subscription carries one cluster's logs).
 */
export interface SourceRoutesDeps {
  logger: Logger;
  metrics: SinkMetrics;
  ingest: IngestOptions;
  delivery: Pick<Delivery, 'deliver' | 'admit'>;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  /** SINK_FIREHOSE_ACCESS_KEY_FILE's keys, or undefined: the Firehose route is off. */
  firehoseKeys: (() => readonly TokenEntry[]) | undefined;
  /** OIDC and/or URL tokens, or undefined: the Pub/Sub route is off. */
  pubsub: PubSubAuthOptions | undefined;
}

export const FIREHOSE_PATH = /^\/firehose\/eks\/([^/]+)\/?$/;
export const PUBSUB_PATH = /^\/pubsub\/gke\/([^/]+)\/?$/;

type Outcome = { ok: true; result: IngestResult } | { ok: false; error: AppError };

export function createSourceRoutes(deps: SourceRoutesDeps): express.Router {
  const { metrics } = deps;
  const logger = deps.logger.child({ component: 'sources' });
  const router = express.Router();

  /** Closes the connection after an answer given before the body was read (as app.ts does). */
  const closeIfUnread = (req: Request, res: Response) => {
    if (req.complete) return;
    res.set('Connection', 'close');
    res.once('finish', () => req.socket.destroy());
  };

  /** The route's cluster, checked; a credential bound to a cluster allows only that one. */
  const routeCluster = (raw: string, auth: SourceAuth & { ok: true }): string | AppError => {
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      name = '';
    }
    if (!CLUSTER_NAME.test(name))
      return new AppError(
        'KAUDIT_ERR_BAD_REQUEST',
        'cluster in the URL must be 1-63 letters, digits, "-", "_" or "."',
        { statusCode: 400 },
      );
    if (auth.cluster !== undefined && auth.cluster !== name)
      return new AppError(
        'KAUDIT_ERR_FORBIDDEN',
        `${auth.subject} may only post for cluster ${auth.cluster}`,
        { statusCode: 403 },
      );
    return name;
  };

  /** Validate, redact, envelope and deliver; an error is an AppError to answer with. */
  const store = async (cluster: string, items: readonly DecodedItem[]): Promise<Outcome> => {
    const batch = createBatch(cluster, new Date().toISOString(), deps.ingest);
    for (const item of items) {
      if (item.cluster !== undefined && item.cluster !== cluster) {
        const named = CLUSTER_NAME.test(item.cluster) ? `cluster ${item.cluster}` : 'another cluster';
        batch.add({
          ok: false,
          line: item.line,
          reason: `the input names ${named}; this route is for ${cluster} (raw item withheld)`,
        });
      } else batch.add(item);
    }
    const { result } = batch;
    metrics.received.inc(result.accepted + result.rejected);
    metrics.batchSize.observe(result.accepted + result.rejected);
    try {
      await deliverInTime(deps.delivery, result.messages, deps.requestTimeoutMs);
    } catch (err) {
      const error = isAppError(err)
        ? err
        : new AppError('KAUDIT_ERR_INTERNAL', 'events could not be stored; retry', {
            statusCode: 503,
            cause: err,
          });
      logger.error({ cluster, code: error.code, err: error.cause ?? error }, error.message);
      return { ok: false, error };
    }
    metrics.accepted.inc(result.accepted);
    metrics.rejected.inc(result.rejected);
    metrics.redacted.inc(result.redacted);
    metrics.truncated.inc(result.truncated);
    return { ok: true, result };
  };

  const parseJson = (body: Buffer): unknown => {
    try {
      return JSON.parse(body.toString('utf8'));
    } catch {
      return undefined;
    }
  };

  router.post(FIREHOSE_PATH, async (req: Request, res: Response) => {
    const header = req.headers['x-amz-firehose-request-id'];
    let requestId = typeof header === 'string' ? header : '';
    const answer = (status: number, errorMessage?: string) => {
      metrics.requests.inc({ status });
      if (status !== 200) {
        closeIfUnread(req, res);
        logger[status >= 500 ? 'error' : 'info'](
          { status, requestId, route: '/firehose/eks/<cluster>' },
          errorMessage ?? '',
        );
      }
      res.status(status).json(firehoseResponse(requestId, Date.now(), errorMessage));
    };
    if (!deps.firehoseKeys)
      return answer(404, 'Firehose delivery is not configured (SINK_FIREHOSE_ACCESS_KEY_FILE)');
    const auth = checkFirehoseKey(req, deps.firehoseKeys);
    if (!auth.ok) {
      metrics.errors.inc({ stage: 'auth', type: 'firehose_key' });
      return answer(auth.status, auth.reason);
    }
    const cluster = routeCluster(FIREHOSE_PATH.exec(req.path)![1]!, auth);
    if (cluster instanceof AppError) return answer(cluster.statusCode, cluster.message);
    const room = deps.delivery.admit();
    if (!room.ok) {
      metrics.errors.inc({ stage: 'admission', type: 'spool_full' });
      return answer(503, 'spool is full; retry');
    }
    res.once('close', () => room.release());
    let body: Buffer;
    try {
      body = await readWholeBody(req, deps.maxBodyBytes);
    } catch (err) {
      const error = isAppError(err)
        ? err
        : new AppError('KAUDIT_ERR_BAD_REQUEST', 'body could not be read', { statusCode: 400 });
      return answer(error.statusCode, error.message);
    }
    const parsed = parseFirehoseRequest(parseJson(body));
    if (!parsed.ok) {
      if (parsed.requestId) requestId = parsed.requestId;
      return answer(400, parsed.reason);
    }
    requestId = parsed.request.requestId;
    const items = parsed.request.records.flatMap((record, index) => firehoseRecordItems(record, index + 1));
    const outcome = await store(cluster, items);
    if (!outcome.ok) return answer(outcome.error.statusCode === 503 ? 503 : 500, outcome.error.message);
    logger.debug(
      {
        cluster,
        requestId,
        records: parsed.request.records.length,
        accepted: outcome.result.accepted,
        rejected: outcome.result.rejected,
      },
      'Firehose batch stored',
    );
    answer(200);
  });

  router.post(PUBSUB_PATH, async (req: Request, res: Response, next: NextFunction) => {
    if (!deps.pubsub)
      return next(
        new AppError(
          'KAUDIT_ERR_BAD_REQUEST',
          'Pub/Sub push is not configured (SINK_PUBSUB_JWKS_FILE or SINK_PUBSUB_TOKEN_FILE)',
          { statusCode: 404 },
        ),
      );
    const auth = await checkPubSubPush(req, new URL(req.originalUrl, 'http://sink'), deps.pubsub);
    if (!auth.ok) {
      metrics.errors.inc({ stage: 'auth', type: 'pubsub' });
      if (auth.status === 401) res.set('WWW-Authenticate', 'Bearer');
      return next(
        new AppError(
          auth.status === 401 ? 'KAUDIT_ERR_UNAUTHENTICATED' : 'KAUDIT_ERR_FORBIDDEN',
          auth.reason,
          { statusCode: auth.status },
        ),
      );
    }
    const cluster = routeCluster(PUBSUB_PATH.exec(req.path)![1]!, auth);
    if (cluster instanceof AppError) return next(cluster);
    const room = deps.delivery.admit();
    if (!room.ok) {
      metrics.errors.inc({ stage: 'admission', type: 'spool_full' });
      return next(room.error);
    }
    res.once('close', () => room.release());
    let body: Buffer;
    try {
      body = await readWholeBody(req, deps.maxBodyBytes);
    } catch (err) {
      return next(err);
    }
    const parsed = parsePubSubPush(parseJson(body));
    if (!parsed.ok) return next(new AppError('KAUDIT_ERR_BAD_REQUEST', parsed.reason, { statusCode: 400 }));
    // A message is one LogEntry (a Logging sink writes one per message); decodeAuditText also takes lines.
    const items = decodeAuditText(parsed.push.data.toString('utf8'));
    const outcome = await store(cluster, items);
    if (!outcome.ok) return next(outcome.error);
    metrics.requests.inc({ status: 200 });
    logger.debug(
      { cluster, messageId: parsed.push.messageId, accepted: outcome.result.accepted },
      'Pub/Sub message stored',
    );
    res.status(200).json({
      accepted: outcome.result.accepted,
      rejected: outcome.result.rejected,
      errors: outcome.result.errors,
    });
  });

  return router;
}

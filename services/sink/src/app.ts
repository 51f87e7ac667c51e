import { AppError, createOpsRouter, type ErrorCode, isAppError, type Logger } from '@kaudit/service-kit';
import express, { type NextFunction, type Request, type Response } from 'express';
import {
  type AdmittedLocals,
  AUDIT_PATH,
  continueIfAwaited,
  createAdmission,
  isRoomRefusal,
} from './admission';
import type { Authenticator } from './auth';
import { type Delivery, deliverInTime } from './delivery';
import { createBatch, type IngestOptions } from './ingest';
import type { SinkMetrics } from './metrics';
import { type BodyFormat, readBody } from './read-body';
import { createSourceRoutes, type SourceRoutesDeps } from './source-routes';

/**
 * The HTTP app without a listener (tests inject requests): POST /audit and /audit/<cluster> for the
 * API server's webhook backend, plus /healthz, /readyz and /metrics. Order per request: admission
 * (authenticate, the cluster in the URL, room in the spool: admission.ts), check the media type, answer
 * `100 Continue` if asked, read the body up to the limit, validate and redact each item, deliver
 * (Kafka or spool), answer.
 */
export interface AppDeps {
  logger: Logger;
  metrics: SinkMetrics;
  authenticate: Authenticator;
  ingest: IngestOptions;
  delivery: Pick<Delivery, 'deliver' | 'ready' | 'admit'>;
  /** Cluster for requests whose URL and credentials name none (SINK_CLUSTER_NAME). */
  clusterName: string;
  maxBodyBytes: number;
  /** An item's text is kept up to this, then its bodies are dropped (SINK_MAX_EVENT_BYTES). */
  maxEventBytes: number;
  /** The answer is due within this from the moment the body is read (SINK_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
  /** The managed-cluster sources' credentials (source-routes.ts); off when absent. */
  sources?: Pick<SourceRoutesDeps, 'firehoseKeys' | 'pubsub'>;
}

interface Locals extends AdmittedLocals {
  format: BodyFormat;
}

const JSON_TYPES = /^application\/([a-z0-9.+-]+\+)?json$/;
const NDJSON_TYPES = new Set([
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/x-jsonlines',
]);

export function createApp(deps: AppDeps): express.Express {
  const { metrics } = deps;
  const logger = deps.logger.child({ component: 'http' });
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(createOpsRouter({ registry: metrics.registry, isReady: () => deps.delivery.ready() }));

  const admission = createAdmission({
    logger: deps.logger,
    metrics,
    authenticate: deps.authenticate,
    delivery: deps.delivery,
    clusterName: deps.clusterName,
  });

  const mediaType = (req: Request, res: Response, next: NextFunction) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (JSON_TYPES.test(type)) (res.locals as Locals).format = 'json';
    else if (NDJSON_TYPES.has(type)) (res.locals as Locals).format = 'ndjson';
    else
      return next(
        new AppError(
          'KAUDIT_ERR_UNSUPPORTED_MEDIA_TYPE',
          `Content-Type must be application/json (EventList or Event) or application/x-ndjson, not "${type || 'none'}"`,
          { statusCode: 415 },
        ),
      );
    next();
  };

  app.post(AUDIT_PATH, admission, mediaType, continueIfAwaited, async (req, res, next) => {
    const started = process.hrtime.bigint();
    const { identity, format, cluster } = res.locals as Locals;
    // Items are validated, redacted and serialized as the body streams in: memory follows the largest
    // item, not the batch, and the work is spread over the chunks instead of one long turn of the loop.
    const batch = createBatch(cluster, new Date().toISOString(), deps.ingest);
    try {
      await readBody(req, {
        format,
        maxBodyBytes: deps.maxBodyBytes,
        maxItemBytes: deps.maxEventBytes,
        onItem: (item) => batch.add(item),
      });
    } catch (err) {
      return next(err);
    }
    const { result } = batch;
    const items = result.accepted + result.rejected;
    if (items === 0)
      return next(new AppError('KAUDIT_ERR_BAD_REQUEST', 'body is empty', { statusCode: 400 }));
    metrics.received.inc(items);
    metrics.batchSize.observe(items);

    try {
      await deliverInTime(deps.delivery, result.messages, deps.requestTimeoutMs);
    } catch (err) {
      return next(err);
    }

    metrics.accepted.inc(result.accepted);
    metrics.rejected.inc(result.rejected);
    metrics.redacted.inc(result.redacted);
    metrics.truncated.inc(result.truncated);
    // 200 even when no item was valid: every rejected item is durably dead-lettered by now, and the API
    // server treats anything but 2xx as a failure (it would retry, dead-lettering each item 5 times,
    // then drop the batch). The counts say what happened; 400 is for bodies that are no batch at all.
    const status = 200;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const fields = {
      status,
      cluster,
      client: identity.subject,
      accepted: result.accepted,
      rejected: result.rejected,
      redacted: result.redacted,
      ms,
    };
    if (result.accepted === 0 && result.rejected > 0) logger.info(fields, 'audit batch had no valid event');
    else logger.debug(fields, 'audit batch stored');
    metrics.requests.inc({ status });
    res.status(status).json({ accepted: result.accepted, rejected: result.rejected, errors: result.errors });
  });

  app.use(
    createSourceRoutes({
      logger: deps.logger,
      metrics,
      ingest: deps.ingest,
      delivery: deps.delivery,
      maxBodyBytes: deps.maxBodyBytes,
      requestTimeoutMs: deps.requestTimeoutMs,
      firehoseKeys: deps.sources?.firehoseKeys,
      pubsub: deps.sources?.pubsub,
    }),
  );

  app.use((_req: Request, _res: Response, next: NextFunction) => {
    next(
      new AppError('KAUDIT_ERR_BAD_REQUEST', 'not found: POST /audit or /audit/<cluster>', {
        statusCode: 404,
      }),
    );
  });

  // A full spool refuses every request until it drains, hundreds a second from clients that ignore
  // Retry-After: one line per 10 s with the count, not one (with a stack) per refusal.
  let roomRefusals = { count: 0, loggedAt: Number.NEGATIVE_INFINITY };
  const logRoomRefusal = (fields: Record<string, unknown>, message: string) => {
    roomRefusals.count += 1;
    const now = performance.now();
    if (now - roomRefusals.loggedAt < 10_000) return;
    logger.error({ ...fields, refused: roomRefusals.count, perSeconds: 10 }, message);
    roomRefusals = { count: 0, loggedAt: now };
  };

  // Every error answer: {error: {code, message}}, never a stack; 5xx logged at error, 4xx at info.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const error = toAppError(err, deps.maxBodyBytes);
    const fields = {
      status: error.statusCode,
      code: error.code,
      method: req.method,
      // The route, not the path as sent: its cluster part is the client's text.
      path:
        req.path === '/audit' || req.path.startsWith('/audit/')
          ? req.path === '/audit'
            ? '/audit'
            : '/audit/<cluster>'
          : req.path.startsWith('/pubsub/gke/')
            ? '/pubsub/gke/<cluster>'
            : 'other',
      remote: req.socket.remoteAddress,
    };
    if (isRoomRefusal(res)) logRoomRefusal(fields, error.message);
    else if (error.statusCode >= 500) logger.error({ ...fields, err: error.cause ?? error }, error.message);
    else logger.info(fields, error.message);
    if (error.statusCode === 503)
      res.set('Retry-After', String(Math.ceil((error.retryAfterMs ?? 10_000) / 1000)));
    // Refused before (or while) its body was read: close the connection as soon as the answer is out.
    // Node would otherwise read and discard the rest of the body first (to keep the connection open,
    // or until it gets round to closing it): for a refusal, that reading would be most of its cost.
    if (!req.complete) {
      res.set('Connection', 'close');
      res.once('finish', () => req.socket.destroy());
    }
    if (req.path.startsWith('/audit') || req.path.startsWith('/pubsub/'))
      metrics.requests.inc({ status: error.statusCode });
    if (res.headersSent) return;
    res.status(error.statusCode).json({ error: { code: error.code, message: error.message } });
  });

  return app;
}

const BODY_PARSER_ERRORS: Record<
  string,
  { status: number; code: ErrorCode; message: (limit: number) => string }
> = {
  'entity.too.large': {
    status: 413,
    code: 'KAUDIT_ERR_PAYLOAD_TOO_LARGE',
    message: (limit) => `body is larger than ${limit} bytes (SINK_MAX_BODY_BYTES)`,
  },
  'encoding.unsupported': {
    status: 415,
    code: 'KAUDIT_ERR_UNSUPPORTED_MEDIA_TYPE',
    message: () => 'Content-Encoding must be identity, gzip or deflate',
  },
  'request.aborted': {
    status: 400,
    code: 'KAUDIT_ERR_BAD_REQUEST',
    message: () => 'request aborted by the client',
  },
  'request.size.invalid': {
    status: 400,
    code: 'KAUDIT_ERR_BAD_REQUEST',
    message: () => 'body length does not match Content-Length',
  },
};

function toAppError(err: unknown, maxBodyBytes: number): AppError {
  if (isAppError(err)) return err;
  const type = (err as { type?: unknown } | null)?.type;
  const known = typeof type === 'string' ? BODY_PARSER_ERRORS[type] : undefined;
  if (known)
    return new AppError(known.code, known.message(maxBodyBytes), { statusCode: known.status, cause: err });
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500)
    return new AppError('KAUDIT_ERR_BAD_REQUEST', 'body could not be read (bad encoding or framing)', {
      statusCode: 400,
      cause: err,
    });
  return new AppError('KAUDIT_ERR_INTERNAL', 'internal error', { statusCode: 500, cause: err });
}

import { AppError, parseRetryAfterMs } from '@kaudit/service-kit';
import { type Alert, alertBody } from './alert';
import type { AlerterConfig } from './config';
import { type ResolvedDestination, type ResolvedUrl, resolveDestinationSecrets } from './destination-secrets';
import type { KibanaLinkOptions } from './kibana-link';
import type { DestinationSpec, RoutingPolicy } from './routing';
import { type Secret, type SecretSource, scrubSecrets } from './secrets';
import { buildSlackMessage } from './slack-message';
import { buildHecEvent, hecAuthorization } from './splunk-hec';
import { SIGNATURE_HEADER, signatureHeaderValue } from './webhook-signature';

export interface RetryBudget {
  /** Attempts after the first; Infinity when only maxElapsedMs bounds them. */
  retries: number;
  /** No retry after this long since the first attempt (the budget that outlasts an outage). */
  maxElapsedMs: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the delivery dead-letters instead. */
  maxRetryAfterMs: number;
}

export interface Destination {
  name: string;
  type: DestinationSpec['type'];
  timeoutMs: number;
  concurrency: number;
  retry: RetryBudget;
  /** Every credential this destination holds, for scrubbing texts that leave the process. */
  secrets: Secret[];
  /** One HTTP attempt. Throws AppError(KAUDIT_ERR_DELIVERY) saying whether a retry may help. */
  send(alert: Alert, signal?: AbortSignal): Promise<void>;
}

/**
 * Time-based, so that an alert outlives an hour-long outage of its destination (Slack, a SIEM being
 * upgraded): retried for up to 2 h, backing off to one attempt every 5 min at most.
 */
export const DEFAULT_RETRY: RetryBudget = {
  retries: Number.POSITIVE_INFINITY,
  maxElapsedMs: 7_200_000,
  initialDelayMs: 1000,
  maxDelayMs: 300_000,
  maxRetryAfterMs: 600_000,
};
export const DEFAULT_TIMEOUT_MS = 10_000;

/** A failed attempt; `failure` labels metrics: timeout, network or the HTTP status. */
export class DeliveryError extends AppError {
  constructor(
    message: string,
    readonly failure: string,
    options: { statusCode: number; retriable: boolean; retryAfterMs?: number },
  ) {
    super('KAUDIT_ERR_DELIVERY', message, options);
    this.name = 'DeliveryError';
  }
}

interface HttpRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

const RESPONSE_EXCERPT_MAX = 200;

/**
 * Posts once and classifies the answer: 2xx delivered; 408, 425, 429 and 5xx retriable (with the
 * Retry-After the server sent, which is how Slack rate-limits webhooks); other 4xx and 3xx are final.
 * Messages name the destination and the status, never the URL (a Slack webhook URL is a credential).
 */
async function post(
  name: string,
  request: HttpRequest,
  timeoutMs: number,
  secrets: Secret[],
  signal?: AbortSignal,
) {
  const timeout = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    if (timeout.aborted) {
      throw new DeliveryError(`${name}: no answer within ${timeoutMs} ms`, 'timeout', {
        retriable: true,
        statusCode: 504,
      });
    }
    const cause = (error as { cause?: { code?: string } }).cause;
    throw new DeliveryError(`${name}: request failed (${cause?.code ?? 'network error'})`, 'network', {
      retriable: true,
      statusCode: 502,
    });
  }
  const text = await response.text().catch(() => '');
  if (response.status >= 200 && response.status < 300) return;
  const excerpt = scrubSecrets(text.slice(0, RESPONSE_EXCERPT_MAX).replace(/\s+/g, ' ').trim(), secrets);
  const retriable = response.status >= 500 || [408, 425, 429].includes(response.status);
  const retryAfterMs = parseRetryAfterMs(response.headers.get('retry-after'));
  const what = response.status >= 300 && response.status < 400 ? ' (redirects are not followed)' : '';
  const message = `${name}: HTTP ${response.status}${what}${excerpt ? `: ${excerpt}` : ''}`;
  throw new DeliveryError(message, String(response.status), {
    statusCode: response.status,
    retriable,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

export interface DestinationContext {
  /** Top-level time zone of routing.yaml; a Slack destination may override it. */
  timezone: string;
  kibana?: KibanaLinkOptions;
  now?: () => number;
}

function urlOf(resolved: ResolvedUrl): string {
  return 'url' in resolved ? resolved.url : resolved.urlSecret.reveal();
}

/** Builds one destination from its spec and its already-resolved secrets. */
export function createDestination(
  name: string,
  spec: DestinationSpec,
  secrets: { url: ResolvedUrl; credential?: Secret },
  defaults: RoutingPolicy['defaults'],
  context: DestinationContext,
): Destination {
  const now = context.now ?? Date.now;
  const retrySpec = { ...defaults.retry, ...spec.retry };
  const common = {
    name,
    type: spec.type,
    timeoutMs: spec.timeout ?? defaults.timeout ?? DEFAULT_TIMEOUT_MS,
    concurrency: spec.concurrency ?? defaults.concurrency ?? (spec.type === 'slack' ? 1 : 4),
    retry: {
      retries: retrySpec.retries ?? DEFAULT_RETRY.retries,
      maxElapsedMs: retrySpec.maxElapsed ?? DEFAULT_RETRY.maxElapsedMs,
      initialDelayMs: retrySpec.initialDelay ?? DEFAULT_RETRY.initialDelayMs,
      maxDelayMs: retrySpec.maxDelay ?? DEFAULT_RETRY.maxDelayMs,
      maxRetryAfterMs: retrySpec.maxRetryAfter ?? DEFAULT_RETRY.maxRetryAfterMs,
    },
    secrets: [
      ...('urlSecret' in secrets.url ? [secrets.url.urlSecret] : []),
      ...(secrets.credential ? [secrets.credential] : []),
    ],
  };
  const json = { 'Content-Type': 'application/json', 'User-Agent': 'kaudit-alerter' };

  const build = (alert: Alert): HttpRequest => {
    switch (spec.type) {
      case 'slack': {
        const message = buildSlackMessage(alert, {
          timezone: spec.timezone ?? context.timezone,
          ...(context.kibana ? { kibana: context.kibana } : {}),
        });
        return { url: urlOf(secrets.url), headers: json, body: JSON.stringify(message) };
      }
      case 'webhook': {
        const body = JSON.stringify(alertBody(alert));
        return {
          url: urlOf(secrets.url),
          headers: {
            ...spec.headers,
            ...json,
            [SIGNATURE_HEADER]: signatureHeaderValue(secrets.credential!.reveal(), body, now()),
            'X-Kaudit-Event': alert.kind,
            // Stable across retries and restarts: receivers can drop a repeat themselves.
            'X-Kaudit-Delivery': `${name}/${alert.id}`,
          },
          body,
        };
      }
      case 'splunk-hec': {
        const event = buildHecEvent(alert, {
          ...(spec.index ? { index: spec.index } : {}),
          ...(spec.source ? { source: spec.source } : {}),
          ...(spec.sourcetype ? { sourcetype: spec.sourcetype } : {}),
        });
        return {
          url: urlOf(secrets.url),
          headers: { ...json, Authorization: hecAuthorization(secrets.credential!.reveal()) },
          body: JSON.stringify(event),
        };
      }
    }
  };

  return {
    ...common,
    // Built per attempt: a webhook signature carries the time it was made.
    send: (alert, signal) => post(name, build(alert), common.timeoutMs, common.secrets, signal),
  };
}

/** Builds the destinations whose secrets config.ts resolved (destination-secrets.ts). */
export function buildDestinations(
  policy: RoutingPolicy,
  resolved: ResolvedDestination[],
  context: Omit<DestinationContext, 'timezone'>,
): Destination[] {
  return resolved.map(({ name, spec, secrets }) =>
    createDestination(name, spec, secrets, policy.defaults, { ...context, timezone: policy.timezone }),
  );
}

/** The destinations of a loaded config: what service.ts hands to the alerter. */
export function configuredDestinations(
  config: Pick<AlerterConfig, 'routing' | 'destinationSecrets' | 'kibana'>,
): Destination[] {
  return buildDestinations(
    config.routing,
    config.destinationSecrets,
    config.kibana ? { kibana: config.kibana } : {},
  );
}

/**
 * Resolves every destination's secrets and builds the destinations; reports all missing secrets at
 * once, by variable or file name.
 */
export function createDestinations(
  policy: RoutingPolicy,
  source: SecretSource,
  context: Omit<DestinationContext, 'timezone'>,
): { destinations: Destination[]; problems: string[] } {
  const { resolved, problems } = resolveDestinationSecrets(policy, source);
  return { destinations: buildDestinations(policy, resolved, context), problems };
}

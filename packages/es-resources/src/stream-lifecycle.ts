import { errors } from '@elastic/elasticsearch';
import { ILM_POLICY_NAME } from './resources';

/**
 * Elasticsearch copies an index template's lifecycle into a data stream only when it creates the
 * stream, so a changed ES_RETENTION (or a switch to or from ILM) must also be applied to the streams
 * that already exist. These are the requests that do it, in order.
 */
export interface StreamLifecycleRequest {
  method: 'PUT' | 'DELETE';
  path: string;
  body?: Record<string, unknown>;
}

export function streamLifecycleRequests(
  dataStream: string,
  options: { retention: string; ilm: boolean },
): StreamLifecycleRequest[] {
  const name = encodeURIComponent(dataStream);
  if (!options.ilm) {
    // Backing indices ILM already manages stay with ILM until it deletes them (prefer_ilm defaults
    // to true); every index created from now on follows this lifecycle.
    return [
      {
        method: 'PUT',
        path: `/_data_stream/${name}/_lifecycle`,
        body: { data_retention: options.retention },
      },
    ];
  }
  return [
    // The policy first, on every backing index including the write index, so no index is left
    // unmanaged between the two requests; then the stream lifecycle goes, leaving ILM alone in charge.
    {
      method: 'PUT',
      path: `/${name}/_settings`,
      body: { index: { lifecycle: { name: ILM_POLICY_NAME, prefer_ilm: true } } },
    },
    { method: 'DELETE', path: `/_data_stream/${name}/_lifecycle` },
  ];
}

/**
 * The cluster has no such API: 405, or 400/404 "no handler found for uri" (the integ-test
 * distribution has no data stream lifecycle endpoints), or a 400 for the unknown ILM index setting
 * (no ILM plugin). Anything else is a real failure.
 */
export function isMissingApi(error: unknown): boolean {
  if (!(error instanceof errors.ResponseError)) return false;
  const status = error.meta.statusCode;
  if (status === 405) return true;
  if (status !== 400 && status !== 404) return false;
  const reason = reasonText(error.meta.body);
  return /no handler found for uri/i.test(reason) || /unknown setting \[index\.lifecycle\./i.test(reason);
}

function reasonText(body: unknown): string {
  if (typeof body === 'string') return body;
  const error = (body as { error?: unknown } | undefined)?.error;
  if (typeof error === 'string') return error;
  return (error as { reason?: string } | undefined)?.reason ?? '';
}

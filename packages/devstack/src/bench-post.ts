import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { Client } from '@elastic/elasticsearch';
import type { Pipeline } from './pipeline';

/** Records, for each of `pending` (probe identities) found in the findings stream, when it was found. */
export async function markSearchable(
  es: Client,
  index: string,
  pending: string[],
  found: Map<string, number>,
): Promise<void> {
  if (pending.length === 0) return;
  const result = await es
    .search<{ user?: { name?: string } }>({
      index,
      size: pending.length,
      query: { terms: { 'user.name': pending } },
      _source: ['user.name'],
    })
    .catch(() => undefined);
  const now = Date.now();
  for (const hit of result?.hits.hits ?? []) {
    const name = hit._source?.user?.name;
    if (name && !found.has(name)) found.set(name, now);
  }
}

/** POSTs EventLists to the pipeline's sink over mTLS, as an API server's webhook backend does. */
export function createSinkPoster(pipeline: Pipeline, maxSockets: number) {
  const agent = new Agent({
    keepAlive: true,
    maxSockets,
    cert: readFileSync(pipeline.certs.clientCert),
    key: readFileSync(pipeline.certs.clientKey),
    ca: readFileSync(pipeline.certs.caCert),
  });
  const url = new URL(pipeline.urls.sink);
  const post = (items: string[]) =>
    new Promise<void>((resolve, reject) => {
      const body = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[${items.join(',')}]}`;
      const req = request(
        url,
        { method: 'POST', agent, headers: { 'Content-Type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`sink answered ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return { post, close: () => agent.destroy() };
}

export const percentile = (values: number[], p: number) => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

import { errors } from '@elastic/elasticsearch';
import { isMissingApi, streamLifecycleRequests } from './stream-lifecycle';

const response = (statusCode: number, body: unknown) =>
  new errors.ResponseError({ body, statusCode, headers: {}, warnings: null, meta: {} as never });

describe('es-resources > stream lifecycle', () => {
  it('sets the retention on the existing data stream itself', () => {
    expect(streamLifecycleRequests('logs-kaudit.audit-default', { retention: '30d', ilm: false })).toEqual([
      {
        method: 'PUT',
        path: '/_data_stream/logs-kaudit.audit-default/_lifecycle',
        body: { data_retention: '30d' },
      },
    ]);
  });

  it('hands an existing data stream to ILM: the policy on its backing indices first, then the lifecycle removed', () => {
    expect(streamLifecycleRequests('logs-kaudit.findings-prod', { retention: '30d', ilm: true })).toEqual([
      {
        method: 'PUT',
        path: '/logs-kaudit.findings-prod/_settings',
        body: { index: { lifecycle: { name: 'kaudit-logs', prefer_ilm: true } } },
      },
      { method: 'DELETE', path: '/_data_stream/logs-kaudit.findings-prod/_lifecycle' },
    ]);
  });

  it.each([
    // Recorded from the integ-test distribution of Elasticsearch 8.19.
    [
      400,
      { error: 'no handler found for uri [/_data_stream/logs-kaudit.audit-x/_lifecycle] and method [PUT]' },
      true,
    ],
    [404, 'no handler found for uri [/_data_stream/x/_lifecycle] and method [DELETE]', true],
    [405, { error: 'Incorrect HTTP method for uri [/_data_stream/x/_lifecycle] and method [PUT]' }, true],
    [
      400,
      {
        error: {
          type: 'illegal_argument_exception',
          reason:
            'unknown setting [index.lifecycle.name] please check that any required plugins are installed',
        },
      },
      true,
    ],
    // A real refusal of the request is not a missing API.
    [
      400,
      { error: { type: 'illegal_argument_exception', reason: 'data_retention must be positive' } },
      false,
    ],
    [404, { error: { type: 'index_not_found_exception', reason: 'no such index [x]' } }, false],
    [403, { error: { type: 'security_exception', reason: 'action is unauthorized' } }, false],
    [500, { error: 'no handler found for uri' }, false],
  ])('HTTP %i %j means a missing API: %s', (status, body, missing) => {
    expect(isMissingApi(response(status, body))).toBe(missing);
  });

  it('a connection error is not a missing API', () => {
    expect(isMissingApi(new errors.ConnectionError('connect ECONNREFUSED'))).toBe(false);
  });
});

import { errors } from '@elastic/elasticsearch';
import { esAccessProblem } from './es-client';

const response = (statusCode: number, reason?: string) =>
  new errors.ResponseError({
    body: reason ? { error: { reason } } : {},
    statusCode,
    headers: {},
    warnings: null,
    meta: {} as never,
  });
const connection = (message: string) => new errors.ConnectionError(message);

describe('es-resources > es-client > esAccessProblem', () => {
  const basic = {
    node: 'https://es:9200',
    username: 'kaudit',
    password: 's3cret-password',
    caFile: '/ca.pem',
  };
  const apiKey = { node: 'https://es:9200', apiKey: 'c2VjcmV0LWtleQ==' };

  it.each<[string, unknown, object, string | undefined]>([
    [
      'an untrusted certificate, CA file set',
      connection('unable to verify the first certificate; if the root CA is installed locally, try...'),
      basic,
      "ES_CA_FILE: Elasticsearch's certificate is not signed by the CA in ES_CA_FILE (/ca.pem) (unable to verify the first certificate)",
    ],
    [
      'a self-signed certificate, no CA file',
      connection('self-signed certificate in certificate chain'),
      apiKey,
      "ES_CA_FILE: Elasticsearch's certificate is not signed by Node's public CAs (no ES_CA_FILE set): set ES_CA_FILE to the CA that signed it (self-signed certificate in certificate chain)",
    ],
    [
      'a host name the certificate does not list',
      connection("Hostname/IP does not match certificate's altnames: IP: 10.0.0.1 is not in the cert's list"),
      basic,
      "ES_NODE: Elasticsearch's certificate is not issued for the host in ES_NODE (Hostname/IP does not match certificate's altnames: IP: 10.0.0.1 is not in the cert's list)",
    ],
    [
      'a refused API key',
      response(401, 'unable to authenticate with provided credentials'),
      apiKey,
      'ES_API_KEY: Elasticsearch refused the API key (401: unable to authenticate with provided credentials)',
    ],
    [
      'a refused password',
      response(401),
      basic,
      'ES_PASSWORD: Elasticsearch refused the password of ES_USERNAME=kaudit (401)',
    ],
    [
      'no credentials for a secured cluster',
      response(401),
      { node: 'https://es:9200' },
      'ES_API_KEY: Elasticsearch requires authentication: set ES_API_KEY or ES_USERNAME/ES_PASSWORD (401)',
    ],
    [
      'a missing privilege',
      response(403, 'action [cluster:admin/component_template/put] is unauthorized for user [kaudit]'),
      basic,
      'ES_USERNAME: user kaudit lacks a privilege kaudit needs (see services/indexer/README.md) (403: action [cluster:admin/component_template/put] is unauthorized for user [kaudit])',
    ],
    ['a cluster still starting', connection('connect ECONNREFUSED 127.0.0.1:9200'), basic, undefined],
    ['a server error', response(503), basic, undefined],
    ['a rejected template', response(400, 'mapper_parsing_exception'), basic, undefined],
    ['anything else', new Error('boom'), basic, undefined],
  ])('%s', (_name, error, config, expected) => {
    const problem = esAccessProblem(error, config as never);
    expect(problem).toBe(expected);
    expect(problem ?? '').not.toContain('s3cret-password');
    expect(problem ?? '').not.toContain('c2VjcmV0LWtleQ==');
  });
});

import { readFileSync } from 'node:fs';
import { Client, type ClientOptions } from '@elastic/elasticsearch';

export interface EsConnectionConfig {
  node: string;
  apiKey?: string;
  username?: string;
  password?: string;
  /** PEM file of the CA that signed the cluster's certificate. */
  caFile?: string;
  requestTimeoutMs?: number;
  /** Client-level retries; the indexer does its own, per bulk item. */
  maxRetries?: number;
}

/** Problems with a connection config, named by the variables operators set. */
export function esConnectionProblems(config: EsConnectionConfig): string[] {
  const problems: string[] = [];
  let url: URL | undefined;
  try {
    url = new URL(config.node);
  } catch {
    problems.push(
      `ES_NODE: must be a URL such as https://elasticsearch:9200 (got ${JSON.stringify(config.node)})`,
    );
  }
  if (url && url.protocol !== 'http:' && url.protocol !== 'https:')
    problems.push('ES_NODE: must be http:// or https://');
  if (config.apiKey && (config.username || config.password)) {
    problems.push('ES_API_KEY: set either ES_API_KEY or ES_USERNAME/ES_PASSWORD, not both');
  }
  if (Boolean(config.username) !== Boolean(config.password)) {
    problems.push('ES_USERNAME/ES_PASSWORD: set both or neither');
  }
  if (config.caFile && url?.protocol === 'http:')
    problems.push('ES_CA_FILE: only meaningful with an https:// ES_NODE');
  return problems;
}

/** An Elasticsearch client from configuration: API key or basic auth, TLS verified against ES_CA_FILE. */
export function createEsClient(config: EsConnectionConfig): Client {
  const options: ClientOptions = {
    node: config.node,
    maxRetries: config.maxRetries ?? 0,
    requestTimeout: config.requestTimeoutMs ?? 30_000,
    compression: false,
  };
  if (config.apiKey) options.auth = { apiKey: config.apiKey };
  else if (config.username && config.password) {
    options.auth = { username: config.username, password: config.password };
  }
  if (config.caFile) options.tls = { ca: readFileSync(config.caFile), rejectUnauthorized: true };
  return new Client(options);
}

/**
 * The variable-naming sentence for an error that retrying cannot fix: a certificate the client does
 * not trust, refused credentials, a missing privilege. Undefined for everything else (a cluster still
 * starting, a network cut), which the caller may retry. Never contains the key or the password.
 */
export function esAccessProblem(error: unknown, config: EsConnectionConfig): string | undefined {
  const name = (error as { name?: string }).name;
  const message = (error as { message?: string }).message ?? '';
  if (name === 'ConnectionError') {
    if (/Hostname\/IP does not match|altnames/i.test(message)) {
      return `ES_NODE: Elasticsearch's certificate is not issued for the host in ES_NODE (${message})`;
    }
    if (/unable to verify|self[- ]signed|certificate|unable to get (local )?issuer/i.test(message)) {
      const trusted = config.caFile
        ? `the CA in ES_CA_FILE (${config.caFile})`
        : "Node's public CAs (no ES_CA_FILE set): set ES_CA_FILE to the CA that signed it";
      return `ES_CA_FILE: Elasticsearch's certificate is not signed by ${trusted} (${message.split(';')[0]})`;
    }
    return undefined;
  }
  if (name !== 'ResponseError') return undefined;
  const meta = (error as { meta?: { statusCode?: number; body?: unknown } }).meta;
  const status = meta?.statusCode;
  const reason = (meta?.body as { error?: { reason?: string } } | undefined)?.error?.reason;
  const detail = reason ? `: ${reason}` : '';
  if (status === 401) {
    if (config.apiKey) return `ES_API_KEY: Elasticsearch refused the API key (401${detail})`;
    if (config.username) {
      return `ES_PASSWORD: Elasticsearch refused the password of ES_USERNAME=${config.username} (401${detail})`;
    }
    return 'ES_API_KEY: Elasticsearch requires authentication: set ES_API_KEY or ES_USERNAME/ES_PASSWORD (401)';
  }
  if (status === 403) {
    const variable = config.apiKey ? 'ES_API_KEY' : 'ES_USERNAME';
    const subject = config.apiKey ? 'the API key' : `user ${config.username ?? '(anonymous)'}`;
    return `${variable}: ${subject} lacks a privilege kaudit needs (see services/indexer/README.md) (403${detail})`;
  }
  return undefined;
}

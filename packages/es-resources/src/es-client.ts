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

import { inspect } from 'node:util';
import { ConfigError } from '@kaudit/service-kit';
import { loadAlerterConfig } from './config';
import { configuredDestinations } from './destinations';
import { resolveSecret, Secret, scrubSecrets } from './secrets';

const routing = `
timezone: Europe/Berlin
destinations:
  slack: { type: slack, urlFrom: { env: SLACK_WEBHOOK_URL } }
  siem: { type: webhook, url: 'https://siem.example.com/x', hmacKeyFrom: { file: /run/secrets/hmac } }
  hec:
    type: splunk-hec
    urlFrom: { env: HEC_URL }
    tokenFrom: { env: HEC_TOKEN }
    retry: { retries: 2, initialDelay: 50ms }
routes:
  - { name: all, destinations: [slack, siem, hec] }
`;

const files: Record<string, string> = {
  'policies/routing.yaml': routing,
  '/run/secrets/hmac': 'hmac-from-file\n',
};
const readFile = (path: string) => {
  const text = files[path];
  if (text === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  return text;
};

const goodEnv = {
  SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T000/B000/XXXXSECRET',
  HEC_URL: 'https://hec.example.com:8088/services/collector/event',
  HEC_TOKEN: 'hec-token-value',
};

function problemsOf(env: Record<string, string>, read = readFile): string[] {
  try {
    loadAlerterConfig(env, read);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('alerter > config', () => {
  test('defaults, and destinations built with their secrets resolved', () => {
    const config = loadAlerterConfig(goodEnv, readFile);
    const destinations = configuredDestinations(config);
    expect(config.env).toMatchObject({
      KAFKA_BROKERS: ['localhost:9092'],
      AUDIT_ALERTS_TOPIC: 'k8s-audit.alerts',
      AUDIT_DLQ_TOPIC: 'k8s-audit.dlq',
      ALERTER_DELIVERED_TOPIC: 'k8s-audit.alerter-delivered',
      ALERTER_ROUTING_FILE: 'policies/routing.yaml',
      ALERTER_PORT: 9303,
      LOG_LEVEL: 'info',
    });
    expect(config.env.KIBANA_BASE_URL).toBeUndefined();
    expect(destinations.map((d) => [d.name, d.type, d.concurrency])).toEqual([
      ['slack', 'slack', 1],
      ['siem', 'webhook', 4],
      ['hec', 'splunk-hec', 4],
    ]);
    const hec = destinations.find((d) => d.name === 'hec')!;
    expect(hec.retry).toEqual({
      retries: 2,
      maxElapsedMs: 7_200_000,
      initialDelayMs: 50,
      maxDelayMs: 300_000,
      maxRetryAfterMs: 600_000,
    });
    expect(hec.secrets.map((s) => s.reveal()).sort()).toEqual([goodEnv.HEC_TOKEN, goodEnv.HEC_URL].sort());
    expect(destinations.find((d) => d.name === 'siem')!.secrets.map((s) => s.reveal())).toEqual([
      'hmac-from-file',
    ]);
  });

  test('names every bad variable, routing problem and missing secret at once, never a secret value', () => {
    const problems = problemsOf(
      {
        ALERTER_PORT: 'eighty',
        ALERTER_COMMIT_INTERVAL: 'often',
        HEC_URL: 'ftp://x',
        HEC_TOKEN: 'tok-123456',
      },
      (p) => (p === '/run/secrets/hmac' ? '  ' : readFile(p)),
    );
    const text = problems.join('\n');
    expect(text).toContain('ALERTER_PORT');
    expect(text).toContain('ALERTER_COMMIT_INTERVAL');
    expect(text).toContain('destinations.slack.urlFrom: environment variable SLACK_WEBHOOK_URL is not set');
    expect(text).toContain('destinations.siem.hmacKeyFrom: secret file /run/secrets/hmac is empty');
    expect(text).toContain('destinations.hec.urlFrom: is not an http(s) URL');
    expect(text).not.toContain('tok-123456');
    expect(text).not.toContain('ftp://x');
  });

  test('an unreadable or invalid routing file is a config problem under ALERTER_ROUTING_FILE', () => {
    expect(problemsOf({ ...goodEnv, ALERTER_ROUTING_FILE: '/nope.yaml' })).toEqual([
      'ALERTER_ROUTING_FILE: cannot read /nope.yaml (ENOENT)',
    ]);
    files['/bad.yaml'] = 'destinations: {}\nroutes: [{ name: r, destinations: [x] }]\n';
    expect(problemsOf({ ...goodEnv, ALERTER_ROUTING_FILE: '/bad.yaml' }).join('\n')).toContain(
      'routes[0].destinations[0]: unknown destination "x"',
    );
  });

  test('KIBANA_BASE_URL must be a URL', () => {
    expect(problemsOf({ ...goodEnv, KIBANA_BASE_URL: 'kibana' }).join('\n')).toContain('KIBANA_BASE_URL');
    expect(
      loadAlerterConfig({ ...goodEnv, KIBANA_BASE_URL: 'http://localhost:5601' }, readFile).env
        .KIBANA_BASE_URL,
    ).toBe('http://localhost:5601');
  });
});

describe('alerter > secrets', () => {
  test('a Secret never prints its value', () => {
    const secret = new Secret('https://hooks.slack.com/services/T/B/SECRET');
    expect(String(secret)).toBe('[redacted]');
    expect(JSON.stringify({ url: secret })).toBe('{"url":"[redacted]"}');
    expect(inspect({ secret })).not.toContain('SECRET');
    expect(secret.reveal()).toContain('SECRET');
  });

  test('resolves from env or file and trims the trailing newline', () => {
    expect(resolveSecret({ env: 'X' }, { env: { X: ' v \n' } }).secret?.reveal()).toBe('v');
    expect(resolveSecret({ file: '/f' }, { env: {}, readFile: () => 'w\n' }).secret?.reveal()).toBe('w');
    expect(resolveSecret({ env: 'X' }, { env: {} }).problem).toBe('environment variable X is not set');
  });

  test('scrubs secret values, URL-encoded ones too, from texts that leave the process', () => {
    const secrets = [new Secret('https://hooks.slack.com/services/T/B/S3CR3T'), new Secret('tok')];
    const echoed = `bad url https://hooks.slack.com/services/T/B/S3CR3T or ${encodeURIComponent('https://hooks.slack.com/services/T/B/S3CR3T')} tok`;
    expect(scrubSecrets(echoed, secrets)).toBe('bad url [redacted] or [redacted] tok');
  });
});

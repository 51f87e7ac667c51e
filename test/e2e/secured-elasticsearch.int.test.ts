import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@elastic/elasticsearch';
import { defaultRootDir } from '@kaudit/devstack';
import {
  buildEvent,
  readStackEnvFile,
  secureKafkaStack,
  stackEnv,
  uniqueName,
  waitFor,
} from '@kaudit/testkit';
import { Kafka, logLevel } from 'kafkajs';

/**
 * Issue 11 item 3: the indexer and `kaudit es-setup` against an Elasticsearch with security on (TLS on
 * HTTP, the elastic bootstrap password, file-realm users), the second instance stack.sh starts with
 * KAUDIT_STACK_ES_SECURE=true beside the plaintext one the other suites use. Ports ES_PORT+1 and
 * ES_TRANSPORT_PORT+1, its own directory; started here once if not running, stopped again if so.
 *
 * API keys work there through test/stack/es-analysis-stub (the integ-test distribution lacks the
 * analysis-common module that the .security index needs; see docs/adr/0004-secured-test-servers.md).
 */
const root = defaultRootDir;
const stackDir = `${process.env.KAUDIT_STACK_DIR ?? '/tmp/kaudit-stack'}-es`;
const esPort = Number(process.env.ES_PORT ?? 9200) + 1;
const secureEnv = {
  ...process.env,
  KAUDIT_STACK_DIR: stackDir,
  KAUDIT_STACK_ONLY: 'elasticsearch',
  KAUDIT_STACK_ES_SECURE: 'true',
  ES_PORT: String(esPort),
  ES_TRANSPORT_PORT: String(Number(process.env.ES_TRANSPORT_PORT ?? 9300) + 1),
  ES_HEAP: process.env.KAUDIT_SECURE_ES_HEAP ?? '512m',
};
const stackScript = join(root, 'test/stack/stack.sh');
const { kafkaBrokers } = stackEnv();
const kafka = new Kafka({ clientId: 'secured-es-test', brokers: kafkaBrokers, logLevel: logLevel.NOTHING });

let startedHere = false;
let vars: Record<string, string>;
let esNode: string;
let caFile: string;
let admin: Client;
let kauditPassword: string;
/** Base64 `id:key` of an API key with the indexer's role, and of one with `monitor` only. */
let indexerKey: string;
let monitorKey: string;

beforeAll(async () => {
  const status = (() => {
    try {
      return execFileSync('bash', [stackScript, 'status'], { env: secureEnv, encoding: 'utf8' });
    } catch (error) {
      return String((error as { stdout?: string }).stdout ?? '');
    }
  })();
  if (!/elasticsearch: running/.test(status)) {
    execFileSync('bash', [stackScript, 'up'], { env: secureEnv, stdio: 'inherit' });
    startedHere = true;
  }
  vars = readStackEnvFile(join(stackDir, 'env'));
  esNode = vars.ES_NODE!;
  caFile = vars.KAUDIT_STACK_CA_FILE!;
  kauditPassword = readFileSync(vars.KAUDIT_STACK_ES_KAUDIT_PASSWORD_FILE!, 'utf8').trim();
  admin = new Client({
    node: esNode,
    auth: { username: 'elastic', password: readFileSync(vars.KAUDIT_STACK_ES_PASSWORD_FILE!, 'utf8').trim() },
    tls: { ca: readFileSync(caFile) },
  });
  const key = async (name: string, role: object) =>
    (await admin.security.createApiKey({ name: uniqueName(name), role_descriptors: { [name]: role } }))
      .encoded;
  indexerKey = await key('kaudit_indexer', {
    cluster: ['monitor', 'manage_index_templates', 'manage_ilm'],
    indices: [{ names: ['logs-kaudit.*', 'logs-kubernetes.audit_logs-kaudit*'], privileges: ['all'] }],
  });
  monitorKey = await key('kaudit_monitor', { cluster: ['monitor'] });
}, 300_000);

afterAll(async () => {
  await admin?.close();
  if (startedHere && process.env.KAUDIT_STACK_KEEP !== 'true') {
    execFileSync('bash', [stackScript, 'down'], { env: secureEnv, stdio: 'inherit' });
  }
}, 120_000);

/** Starts a command; `done` resolves at its exit with its code and everything it printed. */
function startNode(
  args: string[],
  env: Record<string, string>,
): { stop: () => void; exited: () => boolean; done: Promise<{ code: number | null; output: string }> } {
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = false;
  const take = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const done = new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      exited = true;
      resolve({ code, output });
    });
  });
  return { stop: () => child.kill('SIGTERM'), exited: () => exited, done };
}

const runNode = (args: string[], env: Record<string, string>) => startNode(args, env).done;

const esVariables = (overrides: Record<string, string>) => ({
  PATH: process.env.PATH ?? '',
  ES_NODE: esNode,
  ES_CA_FILE: caFile,
  ...overrides,
});

const wrongCa = () => secureKafkaStack().caFile; // the main stack's CA: another CA than this instance's
const refusals: Array<[string, () => Record<string, string>, RegExp]> = [
  [
    'a wrong CA',
    () => ({ ES_USERNAME: 'kaudit-indexer', ES_PASSWORD: kauditPassword, ES_CA_FILE: wrongCa() }),
    /ES_CA_FILE: Elasticsearch's certificate is not signed by the CA in ES_CA_FILE/,
  ],
  [
    'no CA file for a private CA',
    () => ({ ES_USERNAME: 'kaudit-indexer', ES_PASSWORD: kauditPassword, ES_CA_FILE: '' }),
    /ES_CA_FILE: Elasticsearch's certificate is not signed by Node's public CAs/,
  ],
  [
    'a wrong API key',
    () => ({ ES_API_KEY: Buffer.from('no-such-id:no-such-secret').toString('base64') }),
    /ES_API_KEY: Elasticsearch refused the API key \(401/,
  ],
  [
    'a wrong password',
    () => ({ ES_USERNAME: 'kaudit-indexer', ES_PASSWORD: 'not-the-password' }),
    /ES_PASSWORD: Elasticsearch refused the password of ES_USERNAME=kaudit-indexer \(401/,
  ],
  [
    'an API key without the privileges',
    () => ({ ES_API_KEY: monitorKey }),
    /ES_API_KEY: the API key lacks a privilege kaudit needs .*\(403: action \[/,
  ],
  [
    'a user without the privileges',
    () => ({ ES_USERNAME: 'kaudit-monitor', ES_PASSWORD: kauditPassword }),
    /ES_USERNAME: user kaudit-monitor lacks a privilege kaudit needs .*\(403: action \[/,
  ],
];

/** No stack trace and no secret in what an operator sees. */
function expectClean(output: string, secrets: string[]): void {
  expect(/\n\s+at .+:\d+:\d+/.test(output) || /\\n\s+at /.test(output)).toBe(false);
  for (const secret of secrets) expect(output.includes(secret)).toBe(false);
}

describe('e2e > secured elasticsearch > kaudit es-setup', () => {
  const args = (namespace: string) => [
    'packages/cli/dist/bin.js',
    'es-setup',
    '--namespace',
    namespace,
    '--replicas',
    '0',
  ];

  it.each([
    ['basic auth', () => ({ ES_USERNAME: 'kaudit-indexer', ES_PASSWORD: kauditPassword })],
    ['an API key', () => ({ ES_API_KEY: indexerKey })],
  ])('installs the resources with %s over TLS verified by ES_CA_FILE', async (_name, auth) => {
    const namespace = uniqueName('sec').replaceAll('-', '_');
    const result = await runNode(args(namespace), esVariables(auth()));
    expect(result).toMatchObject({ code: 0 });
    expect(result.output).toContain(`data stream logs-kubernetes.audit_logs-kaudit_${namespace}: created`);
    // Created in the secured cluster itself (this distribution has no GET _data_stream API).
    expect(await admin.indices.exists({ index: `logs-kubernetes.audit_logs-kaudit_${namespace}` })).toBe(
      true,
    );
    expectClean(result.output, [kauditPassword, indexerKey]);
  });

  it.each(refusals)('%s: exit 1 with one line naming the variable', async (_name, env, expected) => {
    const variables = env();
    const result = await runNode(args('sec_refused'), esVariables(variables));
    expect(result.code).toBe(1);
    expect(result.output).toMatch(expected);
    expectClean(result.output, [kauditPassword, indexerKey, monitorKey]);
  });
});

describe('e2e > secured elasticsearch > indexer', () => {
  const names = () => {
    const base = uniqueName('secidx');
    return { events: `${base}.events`, namespace: base.replaceAll('-', '_').toLowerCase(), base };
  };
  const indexerEnv = (n: ReturnType<typeof names>, overrides: Record<string, string>) =>
    esVariables({
      KAFKA_BROKERS: kafkaBrokers.join(','),
      AUDIT_EVENTS_TOPIC: n.events,
      AUDIT_ALERTS_TOPIC: `${n.base}.alerts`,
      AUDIT_DLQ_TOPIC: `${n.base}.dlq`,
      INDEXER_GROUP_ID: `${n.base}.indexer`,
      ES_DATA_STREAM_NAMESPACE: n.namespace,
      ES_NUMBER_OF_REPLICAS: '0',
      INDEXER_PORT: '0',
      INDEXER_HOST: '127.0.0.1',
      INDEXER_FLUSH_INTERVAL_MS: '100ms',
      ...overrides,
    });

  it.each([
    [
      'basic auth',
      () => ({ ES_USERNAME: 'kaudit-indexer', ES_PASSWORD: kauditPassword }),
      'basic (kaudit-indexer)',
    ],
    ['an API key', () => ({ ES_API_KEY: indexerKey }), 'api-key'],
  ])('indexes events with %s and ES_CA_FILE, and logs no secret', async (_name, auth, described) => {
    const n = names();
    const producer = kafka.producer();
    await producer.connect();
    const envelope = { cluster: 'secured', receivedAt: new Date().toISOString(), event: buildEvent() };
    await producer.send({ topic: n.events, messages: [{ key: 'k', value: JSON.stringify(envelope) }] });
    await producer.disconnect();
    const index = `logs-kubernetes.audit_logs-kaudit_${n.namespace}`;
    const count = async () => {
      await admin.indices.refresh({ index }).catch(() => undefined);
      return (await admin.count({ index }).catch(() => ({ count: 0 }))).count;
    };
    const indexer = startNode(['services/indexer/dist/main.js'], indexerEnv(n, auth()));
    try {
      await waitFor(
        'the event in Elasticsearch',
        async () => {
          if (indexer.exited()) throw new Error(`the indexer exited:\n${(await indexer.done).output}`);
          return (await count()) >= 1 ? true : undefined;
        },
        60_000,
      );
    } finally {
      indexer.stop();
    }
    const { output } = await indexer.done;
    expect(output).toContain(`"auth":"${described}"`);
    expectClean(output, [kauditPassword, indexerKey]);
  });

  it.each(refusals)(
    '%s: the indexer exits 1 at start-up naming the variable',
    async (_name, env, expected) => {
      const variables = env();
      const result = await runNode(['services/indexer/dist/main.js'], indexerEnv(names(), variables));
      expect(result.code).toBe(1);
      expect(result.output).toMatch(expected);
      expect(result.output).toContain('"code":"KAUDIT_ERR_CONFIG"');
      expectClean(result.output, [kauditPassword, indexerKey, monitorKey]);
    },
  );
});

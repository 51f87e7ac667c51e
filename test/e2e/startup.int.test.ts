import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultRootDir, SERVICE_NAMES, startPipeline } from '@kaudit/devstack';
import { deferred, freeLoopbackPort, stackEnv } from '@kaudit/testkit';

/**
 * Start-up that cannot race (issue 11: `pnpm start` failed 3 times out of 3 on a freshly formatted
 * broker, the services creating the same new topics at once). Each case runs against a private Kafka
 * (test/stack/stack.sh with KAUDIT_STACK_ONLY=kafka, fresh formatted data, no topics) on free ports,
 * so the shared broker is never touched, and the stack's Elasticsearch.
 */
const execFileAsync = promisify(execFile);
const root = defaultRootDir;
const { esNode } = stackEnv();
const dir = mkdtempSync(join(tmpdir(), 'kaudit-startup-'));
let brokers = '';
let stackVars: NodeJS.ProcessEnv = {};
const RUNS = 5;
/** The intrusion in examples/audit-week.jsonl (examples/README.md). */
const EXPECTED_RULES = [
  'credential-minted',
  'privilege-escalation-then-secrets', // alice's binding and token, then backup-helper's list
  'privilege-escalation-then-secrets', // and its gets, in the next window
  'secret-canary-read', // the cluster-wide list returns the canary
  'secret-canary-read', // the get of it, in the next window
  'secret-enumeration',
  'secret-new-service-account',
  'secret-new-source-ip',
  'secret-off-hours',
];

const missing = [
  'packages/devstack/dist/start.js',
  'packages/cli/dist/bin.js',
  ...SERVICE_NAMES.map((name) => `services/${name}/dist/main.js`),
].filter((file) => !existsSync(join(root, file)));

/** A freshly formatted private broker: stopped if running, then started with new data. */
async function freshKafka(): Promise<void> {
  const stack = (command: 'up' | 'down') =>
    execFileAsync('bash', [join(root, 'test/stack/stack.sh'), command], { env: stackVars, timeout: 150_000 });
  await stack('down');
  await stack('up');
}

/** Everything a child process printed so far, and a promise per pattern that resolves once it appears. */
function output(child: ChildProcess) {
  let text = '';
  const waiting: Array<{ test: (text: string) => boolean; resolve: () => void }> = [];
  const exited = deferred<number | null>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const w of waiting.splice(0)) {
      if (w.test(text)) w.resolve();
      else waiting.push(w);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  child.once('exit', (code) => exited.resolve(code));
  return {
    text: () => text,
    exited: exited.promise,
    /** Resolves when test(text) holds; rejects with the output so far if the process exits first. */
    until(what: string, test: (text: string) => boolean): Promise<void> {
      if (test(text)) return Promise.resolve();
      const reached = deferred();
      waiting.push({ test, resolve: () => reached.resolve() });
      return Promise.race([
        reached.promise,
        exited.promise.then((code) => {
          throw new Error(`exited (${code}) before ${what}; output:\n${text}`);
        }),
      ]);
    },
  };
}

/** The `kaudit send` command the runner printed under "Send events", as arguments. */
function printedSendCommand(text: string): string[] {
  const lines = text.slice(text.indexOf('Send events')).split('\n').slice(1);
  const command: string[] = [];
  for (const line of lines) {
    command.push(line.replace(/\\\s*$/, ''));
    if (!line.trimEnd().endsWith('\\')) break;
  }
  return command.join(' ').trim().split(/\s+/);
}

const findingRules = (text: string) =>
  [...text.matchAll(/^finding {2}\S+\s+(\S+)/gm)].map((match) => match[1]!).sort();

beforeAll(async () => {
  if (missing.length > 0) throw new Error(`run pnpm build first (missing ${missing.join(', ')})`);
  const [kafkaPort, controllerPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  stackVars = {
    ...process.env,
    KAUDIT_STACK_ONLY: 'kafka',
    KAUDIT_STACK_DIR: join(dir, 'stack'),
    KAFKA_PORT: String(kafkaPort),
    KAFKA_CONTROLLER_PORT: String(controllerPort),
    KAFKA_HEAP: '384m',
  };
  brokers = `127.0.0.1:${kafkaPort}`;
});

afterAll(async () => {
  await execFileAsync('bash', [join(root, 'test/stack/stack.sh'), 'down'], { env: stackVars }).catch(
    () => undefined,
  );
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('startup > from a freshly formatted broker', () => {
  it('four services started at the same instant, nothing provisioned for them, all become ready', async () => {
    await freshKafka();
    const run = `race${Date.now().toString(36)}`;
    // provision: false — each service creates the topics (and the indexer the ES resources) itself.
    const pipeline = await startPipeline({
      stateDir: join(dir, run),
      idPrefix: run,
      esNamespace: run,
      startStack: false,
      provision: false,
      addresses: { kafkaBrokers: [brokers], esNode },
      ports: { sink: 0, detector: 0, indexer: 0, alerter: 0, slack: 0 },
      log: () => {},
    });
    try {
      // startPipeline resolves only once every service answered /readyz 200 (and throws if one exits).
      expect(pipeline.services.map((s) => [s.name, s.exited()])).toEqual(
        SERVICE_NAMES.map((name) => [name, undefined]),
      );
    } finally {
      await pipeline.stop();
    }
  }, 300_000);

  it(`pnpm start's runner reaches "Send events" and shows the example week's 4 findings, ${RUNS} runs of ${RUNS}`, async () => {
    for (let attempt = 1; attempt <= RUNS; attempt++) {
      await freshKafka();
      const stateDir = join(dir, `start-${attempt}`);
      const runner = spawn(process.execPath, [join(root, 'packages/devstack/dist/start.js')], {
        cwd: root,
        env: {
          ...process.env,
          KAFKA_BROKERS: brokers,
          ES_NODE: esNode,
          KAUDIT_STATE_DIR: stateDir,
          SINK_PORT: '0',
          DETECTOR_PORT: '0',
          INDEXER_PORT: '0',
          ALERTER_PORT: '0',
          KAUDIT_SLACK_STANDIN_PORT: '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out = output(runner);
      try {
        await out.until(`"Send events" (run ${attempt})`, (text) =>
          /Send events[^\n]*\n(.*\\\n)*.*--cacert \S+\n/.test(text),
        );
        const [command, ...args] = printedSendCommand(out.text());
        expect([command, args[0], args[1]]).toEqual(['bash', 'scripts/kaudit.sh', 'send']);
        const sent = await execFileAsync(command!, args, { cwd: root, timeout: 120_000 });
        expect(sent.stdout).toMatch(/accepted 4119, rejected 0/);
        await out.until(
          `the ${EXPECTED_RULES.length} findings (run ${attempt})`,
          (text) => findingRules(text).length >= EXPECTED_RULES.length,
        );
        expect(findingRules(out.text())).toEqual(EXPECTED_RULES);
      } finally {
        runner.kill('SIGINT');
        await out.exited;
      }
    }
  }, 900_000);
});

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stackEnv, uniqueName } from '@kaudit/testkit';

const run = promisify(execFile);
const root = join(__dirname, '../../../..');

describe('cli > es-setup (real Elasticsearch)', () => {
  jest.setTimeout(60_000);

  it('installs the templates and the data streams of a namespace, twice without harm', async () => {
    const namespace = uniqueName('cli').replaceAll('-', '_');
    const args = [
      'packages/cli/dist/bin.js',
      'es-setup',
      '--namespace',
      namespace,
      '--replicas',
      '0',
      '--retention',
      '90d',
    ];
    const env = { ...process.env, ES_NODE: stackEnv().esNode };
    const first = await run(process.execPath, args, { cwd: root, env });
    expect(first.stdout).toContain('index template logs-kaudit.audit: applied');
    expect(first.stdout).toContain('retention: data stream lifecycle, 90d');
    expect(first.stdout).toMatch(new RegExp(`data stream logs-kaudit\\.audit-${namespace}: created`));
    const second = await run(process.execPath, args, { cwd: root, env });
    expect(second.stdout).toContain(`data stream logs-kaudit.findings-${namespace}: existed`);
    // The test stack's integ-test distribution has no data stream lifecycle API; a full one updates.
    expect(second.stdout).toMatch(/^data stream lifecycle: (updated|unchanged \(this cluster has no)/m);
  });

  it('refuses bad options with every problem named and exit code 1', async () => {
    const failure = await run(
      process.execPath,
      ['packages/cli/dist/bin.js', 'es-setup', '--namespace', 'Bad-Name', '--retention', 'forever'],
      {
        cwd: root,
        env: { ...process.env, ES_NODE: 'not a url' },
      },
    ).catch((error: { code: number; stderr: string }) => error);
    expect(failure).toMatchObject({ code: 1 });
    const { stderr } = failure as { stderr: string };
    expect(stderr).toContain('--namespace:');
    expect(stderr).toContain('--retention:');
    expect(stderr).toContain('ES_NODE:');
  });
});

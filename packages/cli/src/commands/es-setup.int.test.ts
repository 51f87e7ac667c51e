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
    expect(first.stdout).toContain('index template logs-kubernetes.audit_logs-kaudit: applied');
    // The pre-ADR-0008 template stays, so existing logs-kaudit.audit-* streams stay mapped.
    expect(first.stdout).toContain('index template logs-kaudit.audit: applied');
    expect(first.stdout).toContain('retention: data stream lifecycle, 90d');
    expect(first.stdout).toMatch(
      new RegExp(`data stream logs-kubernetes\\.audit_logs-kaudit_${namespace}: created`),
    );
    const second = await run(process.execPath, [...args, '--migrate-legacy'], { cwd: root, env });
    expect(second.stdout).toContain(`legacy data stream logs-kaudit.audit-${namespace}: none`);
    expect(second.stdout).toContain(`data stream logs-kaudit.findings-${namespace}: existed`);
    // The test stack's integ-test distribution has no data stream lifecycle API; a full one updates.
    expect(second.stdout).toMatch(/^data stream lifecycle: (updated|unchanged \(this cluster has no)/m);
  });

  it('takes its defaults from the variables the indexer reads, parsed the same way', async () => {
    const failure = await run(process.execPath, ['packages/cli/dist/bin.js', 'es-setup'], {
      cwd: root,
      env: {
        ...process.env,
        ES_NODE: stackEnv().esNode,
        ES_NUMBER_OF_REPLICAS: 'two',
        ES_ILM_POLICY: 'maybe',
      },
    }).catch((error: { code: number; stderr: string }) => error);
    expect(failure).toMatchObject({ code: 1 });
    const { stderr } = failure as { stderr: string };
    expect(stderr).toContain('ES_NUMBER_OF_REPLICAS: must be a whole number');
    expect(stderr).toContain('ES_ILM_POLICY: must be true or false');
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

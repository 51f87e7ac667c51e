import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { type AuditEvent, FindingSchema } from '@kaudit/audit-schema';
import { decodeEngineState, encodeIdentity } from '@kaudit/detection';
import { buildEvent, samplesDir } from '@kaudit/testkit';
import { type DetectOptions, runDetect } from './detect';

const policyFile = join(__dirname, '../../../../policies/detection.yaml');

function capture() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk) => out.push(String(chunk)));
  stderr.on('data', (chunk) => err.push(String(chunk)));
  return { io: { stdout, stderr }, out: () => out.join(''), err: () => err.join('') };
}

async function detect(options: Partial<DetectOptions>, stdin?: Readable) {
  const { io, out, err } = capture();
  const summary = await runDetect(
    { policy: policyFile, output: 'json', cluster: 'prod', files: [], ...options },
    stdin ? { ...io, stdin } : io,
  );
  return { summary, stdout: out(), stderr: err() };
}

const lines = (events: AuditEvent[]) => events.map((event) => `${JSON.stringify(event)}\n`).join('');
const at = (iso: string, overrides: Partial<AuditEvent> = {}) =>
  buildEvent({ requestReceivedTimestamp: iso, stageTimestamp: iso, ...overrides });

describe('cli > detect', () => {
  it('prints one finding per line on stdout and bad lines with file:line on stderr', async () => {
    const file = join(samplesDir, 'openshift/ocp-aws-2024-audit-with-bad-line.jsonl');
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-detect-'));
    const night = join(dir, 'night.jsonl');
    // Saturday 03:00 in Berlin: a human reading a secret off hours.
    writeFileSync(night, lines([at('2026-01-10T02:00:00Z')]));
    const { summary, stdout, stderr } = await detect({ files: [file, night] });
    expect(stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: not valid JSON`));
    expect(stderr).toMatch(/102 events, 3 secret reads, .* 1 findings, 1 bad lines/);
    expect(summary).toEqual({ events: 102, badLines: 1, findings: 1 });
    const findings = stdout
      .trim()
      .split('\n')
      .map((line) => FindingSchema.parse(JSON.parse(line)));
    expect(findings.map((f) => [f.rule, f.identity.username])).toEqual([
      ['secret-off-hours', 'alice@example.com'],
    ]);
  });

  it('prints each finding once, as it finally is, and the same on a replay', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-detect-'));
    const file = join(dir, 'anonymous.jsonl');
    // Anonymous reads a minute apart: reported at the first, updated by the later ones (one window).
    const reads = [0, 1, 2, 3].map((m) =>
      at(`2026-01-10T02:0${m}:00Z`, { user: { username: 'system:anonymous' }, auditID: `a-${m}` }),
    );
    writeFileSync(file, lines(reads));
    const first = await detect({ files: [file] });
    const findings = first.stdout
      .trim()
      .split('\n')
      .map((line) => FindingSchema.parse(JSON.parse(line)));
    expect(findings.map((f) => [f.rule, f.count])).toEqual([['secret-anonymous-access', 4]]);
    expect(findings[0]!.revision).toBeGreaterThan(1);
    expect((await detect({ files: [file] })).stdout).toBe(first.stdout);
  });

  it('reads stdin and prints a table', async () => {
    const stdin = Readable.from([
      lines([at('2026-01-10T02:00:00Z', { user: { username: 'system:anonymous' } })]),
    ]);
    const { stdout } = await detect({ output: 'table', files: ['-'] }, stdin);
    expect(stdout.split('\n')[0]).toMatch(
      /^SEVERITY\s+RULE\s+IDENTITY\s+SOURCE IP\s+FIRST SEEN\s+COUNT\s+SUMMARY$/,
    );
    expect(stdout).toMatch(/critical\s+secret-anonymous-access\s+system:anonymous/);
  });

  it('--state saves baselines so a second run continues the first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-state-'));
    const state = join(dir, 'state.json');
    const first = join(dir, 'week1.jsonl');
    const second = join(dir, 'week2.jsonl');
    writeFileSync(first, lines([at('2026-01-01T10:00:00Z', { sourceIPs: ['203.0.113.10'] })]));
    writeFileSync(second, lines([at('2026-01-12T10:00:00Z', { sourceIPs: ['198.51.100.7'] })]));

    await detect({ files: [first], state });
    expect(JSON.parse(readFileSync(state, 'utf8'))).toMatchObject({
      version: 1,
      clusters: { prod: { firstEvent: Date.parse('2026-01-01T10:00:00Z') } },
    });
    const continued = await detect({ files: [second], state });
    expect(continued.stdout).toMatch(/"rule":"secret-new-source-ip"/);
    expect(continued.stdout).toMatch(/known addresses: 203\.0\.113\.10/);

    // Without the state the second week is the cluster's first: learning, nothing is new.
    const fresh = await detect({ files: [second] });
    expect(fresh.stdout).not.toMatch(/secret-new-source-ip/);
  });

  it('--state reads the JSON object format of earlier versions and writes the changelog encoding', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-state-'));
    const state = join(dir, 'state.json');
    const first = join(dir, 'week1.jsonl');
    const second = join(dir, 'week2.jsonl');
    writeFileSync(first, lines([at('2026-01-01T10:00:00Z', { sourceIPs: ['203.0.113.10'] })]));
    writeFileSync(second, lines([at('2026-01-12T10:00:00Z', { sourceIPs: ['198.51.100.7'] })]));
    await detect({ files: [first], state });
    // The file an earlier kaudit wrote: the same state with every identity as a plain object.
    const current = JSON.parse(readFileSync(state, 'utf8'));
    const upgraded = decodeEngineState(readFileSync(state, 'utf8'));
    writeFileSync(state, JSON.stringify({ ...current, identities: upgraded.identities }));
    expect(Object.values(JSON.parse(readFileSync(state, 'utf8')).identities)[0]).not.toBeInstanceOf(Array);

    const continued = await detect({ files: [second], state });
    expect(continued.stdout).toMatch(/known addresses: 203\.0\.113\.10/);
    const rewritten = JSON.parse(readFileSync(state, 'utf8'));
    expect(rewritten.version).toBe(1);
    expect(Object.values(rewritten.identities)[0]).toBeInstanceOf(Array);
    expect(Object.values(rewritten.identities)[0]).toEqual(
      JSON.parse(encodeIdentity(Object.values(decodeEngineState(JSON.stringify(rewritten)).identities)[0]!)),
    );
  });

  it('rejects a bad policy naming the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-policy-'));
    const bad = join(dir, 'policy.yaml');
    writeFileSync(bad, 'businessHours:\n  start: "8am"\n');
    await expect(detect({ policy: bad, files: [] })).rejects.toThrow(/businessHours\.start: must be HH:MM/);
  });
});

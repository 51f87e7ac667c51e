import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeAuditText, type Finding, parseAuditEvent } from '@kaudit/audit-schema';
import {
  allowedBy,
  bindingCreate,
  byRule,
  otherRequest,
  run,
  runPartitioned,
  secretRead,
  serviceAccount,
  tokenRequest,
  WARMUP,
} from '../test/events';
import { loadPolicyText } from './policy';

/**
 * The detector runs one engine per partition of the events topic, each seeing the identities keyed to
 * it; the sink puts copies of chain steps where the reads they may empower are (chain-copies.ts). These
 * tests split the same traffic over 1 to 7 engines and expect what one engine over everything finds
 * (`kaudit detect`): a chain across identities must not depend on how their names hash.
 */
describe('detection > engine > partitioned like the detector', () => {
  const alice = { user: { username: 'alice@example.com', groups: ['system:authenticated'] } };
  const helper = serviceAccount('default', 'backup-helper');
  const told = (findings: Finding[]) =>
    findings.map((f) => `${f.rule} ${f.identity.username} ${f.severity} ${[...f.auditIDs].join(',')}`).sort();
  // Every engine sees the cluster from WARMUP on (its learning period is the cluster's, as in a pipeline
  // whose partitions all carry traffic).
  const warm = (n: number) =>
    Array.from({ length: n * 8 }, (_, i) =>
      otherRequest(WARMUP, { user: { username: `warm-${i}`, groups: [] } }),
    );

  const scenarios = {
    'a token minted for another account, after a binding of the minter': [
      bindingCreate('2026-01-12T02:47:12Z', 'backup-helper-admin', alice),
      tokenRequest('2026-01-12T02:47:40Z', 'default', 'backup-helper', alice),
      secretRead('2026-01-12T02:49:31Z', {
        user: helper,
        ...allowedBy('backup-helper-admin', 'cluster-admin'),
      }),
    ],
    'a read through a binding someone else created': [
      bindingCreate('2026-01-12T10:00:00Z', 'ops-admin', alice),
      secretRead('2026-01-12T10:05:00Z', {
        user: serviceAccount('ops', 'robot'),
        ...allowedBy('ops-admin', 'cluster-admin'),
      }),
    ],
    'an impersonated read after the impersonator gained privilege': [
      bindingCreate('2026-01-12T10:00:00Z', 'x', alice),
      secretRead('2026-01-12T10:02:00Z', {
        ...alice,
        impersonatedUser: { username: 'bob@example.com', groups: [] },
      }),
    ],
    'the read arrives before the step (within the lateness)': [
      secretRead('2026-01-12T10:05:00Z', {
        user: serviceAccount('ops', 'robot'),
        ...allowedBy('ops-admin', 'cluster-admin'),
      }),
      bindingCreate('2026-01-12T10:04:50Z', 'ops-admin', alice),
    ],
  };

  it.each(Object.entries(scenarios))('%s: the chain is found on every partition count', (_name, events) => {
    for (let n = 1; n <= 7; n++) {
      const traffic = [...warm(n), ...events];
      const single = run(traffic).findings;
      expect(byRule(single, 'privilege-escalation-then-secrets')).toHaveLength(1);
      expect({ n, findings: told(runPartitioned(traffic, n).findings) }).toEqual({
        n,
        findings: told(single),
      });
    }
  });

  it('a copy is a step only: no event, no baseline, no finding of its own on the partition it is copied to', () => {
    const binding = bindingCreate('2026-01-12T10:00:00Z', 'x', alice);
    const { engines } = runPartitioned([otherRequest(WARMUP), binding], 4);
    const stats = engines.map((engine) => engine.stats());
    expect(stats.reduce((sum, s) => sum + s.events, 0)).toBe(2);
    expect(stats.map((s) => s.copies)).toEqual([1, 1, 1, 1]);
    // alice has state on one partition only, and every partition holds her step.
    expect(engines.filter((engine) => engine.snapshot('prod/alice@example.com')).length).toBe(1);
    expect(engines.map((engine) => engine.snapshotCluster('prod')?.steps?.map((s) => s.auditID))).toEqual(
      Array(4).fill([binding.auditID]),
    );
  });

  it('a copy of a step by an ignored actor, a refused one, or an ordinary request records nothing', () => {
    const controller = { user: { username: 'system:kube-controller-manager', groups: [] } };
    const { engines } = runPartitioned(
      [
        otherRequest(WARMUP),
        bindingCreate('2026-01-12T10:00:00Z', 'a', controller),
        bindingCreate('2026-01-12T10:00:01Z', 'b', { ...alice, responseStatus: { code: 403 } }),
        tokenRequest('2026-01-12T10:00:02Z', 'default', 'self', { user: serviceAccount('default', 'self') }),
      ],
      3,
    );
    expect(engines.map((engine) => engine.snapshotCluster('prod')?.steps ?? [])).toEqual([[], [], []]);
  });

  it('the example week: the pipeline finds what kaudit detect finds, chains across identities included', () => {
    const root = join(__dirname, '../../..');
    const events = decodeAuditText(readFileSync(join(root, 'examples/audit-week.jsonl'), 'utf8')).flatMap(
      (item) => {
        const parsed = item.ok ? parseAuditEvent(item.raw) : undefined;
        return parsed?.ok ? [parsed.event] : [];
      },
    );
    const policy = loadPolicyText(readFileSync(join(root, 'policies/detection.yaml'), 'utf8'));
    // kaudit detect: one engine over everything.
    const single = runPartitioned(events, 1, policy).findings;
    expect(byRule(single, 'privilege-escalation-then-secrets')).toHaveLength(2);
    for (const n of [3, 6])
      expect({ n, findings: told(runPartitioned(events, n, policy).findings) }).toEqual({
        n,
        findings: told(single),
      });
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { samplesDir, sourceFixture, sourceFixturesDir } from '@kaudit/testkit';
import { type AuditFileItem, readAuditFiles } from './read-audit-files';

async function collect(paths: string[], stdin?: Readable): Promise<AuditFileItem[]> {
  const items: AuditFileItem[] = [];
  for await (const item of readAuditFiles(paths, stdin ? { stdin } : {})) items.push(item);
  return items;
}

const errors = (items: AuditFileItem[]) => items.filter((item) => 'error' in item);

describe('cli > read-audit-files > managed-cluster files', () => {
  it.each([
    ['aks-records.jsonl', 3, 0, 'prod-aks-1'],
    ['aks-event-hubs.json', 3, 0, 'prod-aks-1'],
    ['eks-subscription-payload.json', 3, 1, 'prod-eks-1'],
    ['eks-subscription-payload.b64', 3, 1, 'prod-eks-1'],
    ['eks-filter-log-events.json', 3, 1, undefined],
    ['eks-export.txt', 3, 1, undefined],
    ['gke-logging-read.json', 4, 0, 'prod-gke-1'],
    ['gke-log-entries.jsonl', 4, 0, 'prod-gke-1'],
  ])("%s: %i events, %i unreadable, cluster %s, and the same gzip'd", async (name, good, bad, cluster) => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-read-gz-'));
    const gz = join(dir, `${name}.gz`);
    writeFileSync(gz, gzipSync(sourceFixture(name)));
    for (const path of [join(sourceFixturesDir, name), gz]) {
      const items = await collect([path]);
      expect(errors(items)).toHaveLength(bad);
      const events = items.filter((item) => 'raw' in item);
      expect(events).toHaveLength(good);
      for (const item of events) expect(item.cluster).toBe(cluster);
    }
  });

  it('reads gzip from stdin too', async () => {
    const items = await collect(['-'], Readable.from([gzipSync(sourceFixture('gke-log-entries.jsonl'))]));
    expect(items.filter((item) => 'raw' in item)).toHaveLength(4);
  });
});

describe('cli > read-audit-files', () => {
  it('streams JSON lines and reports the bad line with its number', async () => {
    const file = join(samplesDir, 'openshift/ocp-aws-2024-audit-with-bad-line.jsonl');
    const items = await collect([file]);
    expect(errors(items)).toEqual([
      { file, line: 2, error: expect.stringMatching(/^line 2: not valid JSON/) },
    ]);
    expect(items).toHaveLength(102);
    expect(items[2]).toMatchObject({ file, line: 3, raw: expect.objectContaining({ kind: 'Event' }) });
  });

  it.each([
    ['a pretty-printed single event', 'openshift/raw-kubernetes-event.json', 1],
    ['an Event Hubs batch', 'aks/eventhub-batch.json', 22],
    ['a file starting with a BOM', 'aks/single-event-bom.json', 1],
    ['JSON lines without a trailing newline', 'minikube/pod-exec.jsonl', undefined],
  ])('reads %s', async (_name, path, expected) => {
    const items = await collect([join(samplesDir, path)]);
    expect(errors(items)).toEqual([]);
    if (expected !== undefined) expect(items).toHaveLength(expected);
    else expect(items.length).toBeGreaterThan(0);
  });

  it('reads a pretty-printed EventList and stdin ("-")', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kaudit-read-'));
    const list = join(dir, 'list.json');
    writeFileSync(list, JSON.stringify({ kind: 'EventList', items: [{ a: 1 }, { a: 2 }] }, null, 2));
    const items = await collect([list, '-'], Readable.from(['{"b":1}\n', 'oops\n']));
    expect(items).toEqual([
      { file: list, line: 1, raw: { a: 1 } },
      { file: list, line: 1, raw: { a: 2 } },
      { file: '<stdin>', line: 1, raw: { b: 1 } },
      { file: '<stdin>', line: 2, error: expect.stringMatching(/not valid JSON/) },
    ]);
  });
});

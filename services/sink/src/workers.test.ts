import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@kaudit/service-kit';
import { loadSinkConfig } from './config';
import { workerConfig, workerCount, workerSpoolDir } from './workers';

const logger = createLogger({ service: 'sink-workers-test', level: 'silent' });
const policy = join(__dirname, '../../../policies/redaction.yaml');
const config = (spoolDir: string, workers: number) =>
  loadSinkConfig({
    SINK_INSECURE_DEV: 'true',
    SINK_REDACTION_POLICY_FILE: policy,
    SINK_SPOOL_DIR: spoolDir,
    SINK_WORKERS: String(workers),
    SINK_SPOOL_MAX_BYTES: String(1024 * 1024 * 1024),
  });

describe('sink > workers', () => {
  it('gives worker 0 the spool directory a single sink used, the others a subdirectory and a share of the bytes', () => {
    const base = config('/var/spool/kaudit', 4);
    expect(workerConfig(base, 0, 4)).toMatchObject({
      spoolDir: '/var/spool/kaudit',
      spoolMaxBytes: 256 * 1024 * 1024,
    });
    expect(workerConfig(base, 3, 4)).toMatchObject({
      spoolDir: '/var/spool/kaudit/worker-3',
      spoolMaxBytes: 256 * 1024 * 1024,
    });
    expect(workerSpoolDir('/s', 1)).toBe('/s/worker-1');
  });

  it('starts more workers than SINK_WORKERS while a higher worker spool still holds events, not for drained ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sink-workers-'));
    expect(await workerCount(config(join(dir, 'absent'), 2), logger)).toBe(2);
    // worker-2: drained (head at the end of its only segment); worker-3: one record past the head.
    mkdirSync(join(dir, 'worker-2'));
    writeFileSync(join(dir, 'worker-2', 'segment-000000000001.log'), Buffer.alloc(100));
    writeFileSync(join(dir, 'worker-2', 'head.json'), JSON.stringify({ segment: 1, offset: 100 }));
    expect(await workerCount(config(dir, 2), logger)).toBe(2);
    mkdirSync(join(dir, 'worker-3'));
    writeFileSync(join(dir, 'worker-3', 'segment-000000000004.log'), Buffer.alloc(100));
    writeFileSync(join(dir, 'worker-3', 'head.json'), JSON.stringify({ segment: 4, offset: 40 }));
    expect(await workerCount(config(dir, 2), logger)).toBe(4);
    expect(await workerCount(config(dir, 5), logger)).toBe(5);
  });
});

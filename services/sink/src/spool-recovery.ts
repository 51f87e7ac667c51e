import { type FileHandle, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@kaudit/service-kit';
import { readRecord } from './spool-file';

/**
 * The spool directory's layout, and what open() finds there after a restart or a crash: numbered
 * segment files of records and head.json, the drainer's committed position. Segments wholly before the
 * head are deleted, every record is validated, a torn tail of the last segment (never fsync'd, so never
 * answered 2xx) is truncated, and the rest of a segment after a corrupt record is skipped and counted.
 */

export interface Position {
  segment: number;
  offset: number;
}

export interface Segment {
  id: number;
  fh: FileHandle;
  /** Bytes of whole, fsync'd records; reads never go past it. */
  size: number;
}

export const SEGMENT = /^segment-(\d{12})\.log$/;
export const segmentName = (id: number) => `segment-${String(id).padStart(12, '0')}.log`;
export const HEAD_FILE = 'head.json';

export async function recoverSegments(options: {
  dir: string;
  logger: Logger;
  onCorrupt?: (bytes: number, reason: string) => void;
}): Promise<{
  segments: Segment[];
  /** Where draining resumes: the last record boundary at or before the saved head, when its segment is left. */
  head?: Position;
  /** head.json as it was read, when it was readable. */
  saved?: Position;
}> {
  const { dir, logger } = options;
  const ids = await segmentIds(dir);
  const saved = await readHead(dir, logger);
  const segments: Segment[] = [];
  let head: Position | undefined;
  for (const id of ids) {
    if (saved && id < saved.segment) {
      await unlink(join(dir, segmentName(id)));
      continue;
    }
    const fh = await open(join(dir, segmentName(id)), 'r+');
    const isLast = id === ids[ids.length - 1];
    const { size, boundaries } = await scan(fh, id, isLast, logger, options.onCorrupt);
    segments.push({ id, fh, size });
    if (saved?.segment === id) {
      // Resume at the last record boundary at or before the saved offset (re-sending beats losing).
      head = { segment: id, offset: boundaries.filter((b) => b <= saved.offset).pop() ?? 0 };
    }
  }
  return { segments, ...(head ? { head } : {}), ...(saved ? { saved } : {}) };
}

async function readHead(dir: string, logger: Logger): Promise<Position | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, HEAD_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text) as Partial<Position>;
    if (Number.isInteger(value.segment) && Number.isInteger(value.offset) && value.offset! >= 0)
      return { segment: value.segment!, offset: value.offset! };
  } catch {
    // fall through
  }
  logger.error(
    { file: HEAD_FILE },
    'spool head is unreadable: draining from the oldest segment (duplicates possible)',
  );
  return undefined;
}

/** Validates every record; truncates a torn tail of the last segment. */
async function scan(
  fh: FileHandle,
  id: number,
  isLast: boolean,
  logger: Logger,
  onCorrupt?: (bytes: number, reason: string) => void,
): Promise<{ size: number; boundaries: number[] }> {
  const fileSize = (await fh.stat()).size;
  const boundaries = [0];
  let offset = 0;
  while (offset < fileSize) {
    const record = await readRecord(fh, offset, fileSize);
    if (!record.ok) {
      const lost = fileSize - offset;
      if (isLast) {
        logger.warn(
          { segment: id, offset, bytes: lost, reason: record.reason },
          'torn record at the end of the spool (never acknowledged): truncating',
        );
        await fh.truncate(offset);
        await fh.sync();
      } else {
        logger.error(
          { segment: id, offset, bytes: lost, reason: record.reason },
          'corrupt spool record: skipping the rest of the segment',
        );
        onCorrupt?.(lost, record.reason);
      }
      break;
    }
    offset += record.bytes;
    boundaries.push(offset);
  }
  return { size: offset, boundaries };
}

/**
 * Whether a spool directory holds records not yet drained, from file sizes and head.json alone (no
 * lock, no reading of records): how the sink's primary finds spools of workers it no longer runs.
 */
export async function holdsRecords(dir: string, logger: Logger): Promise<boolean> {
  const ids = await segmentIds(dir).catch(() => []);
  const head = await readHead(dir, logger);
  for (const id of ids) {
    if (head && id < head.segment) continue;
    const size = (await stat(join(dir, segmentName(id)))).size;
    if (size > (head?.segment === id ? head.offset : 0)) return true;
  }
  return false;
}

/** The numbers of the segment files in `dir`, in order. */
async function segmentIds(dir: string): Promise<number[]> {
  return (await readdir(dir))
    .map((name) => SEGMENT.exec(name)?.[1])
    .filter((id): id is string => id !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError, type Logger } from '@kaudit/service-kit';
import { readRecord, syncDir, writeAll } from './spool-file';
import { encodeRecord, type OutMessage } from './spool-format';
import { lockSpoolDir, type SpoolLock } from './spool-lock';
import { HEAD_FILE, type Position, recoverSegments, type Segment, segmentName } from './spool-recovery';

/**
 * Durable append-only spool for when Kafka cannot take events. Records are appended to numbered
 * segment files and fsync'd before append() resolves, so a 2xx that follows is backed by the disk.
 * The drainer reads from the committed head, sends to Kafka, then ack()s, which moves the head
 * (head.json, replaced atomically) and deletes fully drained segments.
 *
 * After a crash: a torn or zero-filled tail of the last segment never got its fsync (so never got a
 * 2xx) and is truncated away; a record between head and tail whose checksum fails is counted as
 * dropped and logged. A crash between a Kafka ack and the head update re-sends (at least once).
 * One process per directory: open() takes a lock file (spool-lock.ts) and refuses a directory in use.
 */
export interface SpoolOptions {
  dir: string;
  /** Bound on the segment files on disk (record headers and drained-but-not-yet-deleted bytes included). */
  maxBytes: number;
  /**
   * A new segment starts when the current one would pass this (default maxBytes/16, 64 KiB-64 MiB). Drained
   * space comes back a whole segment at a time, so a segment is a small part of the bound.
   */
  segmentBytes?: number;
  logger: Logger;
  /** Called with the byte count whenever it changes (for the spool-bytes gauge). */
  onBytes?: (bytes: number) => void;
  /** Called when records are found corrupt and skipped. */
  onCorrupt?: (bytes: number, reason: string) => void;
}

export interface SpoolBatch {
  messages: OutMessage[];
  records: number;
  bytes: number;
  end: Position;
}

interface Pending {
  record: Buffer;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export function spoolFullError(maxBytes: number): AppError {
  return new AppError('KAUDIT_ERR_SPOOL', `spool is full (${maxBytes} bytes); retry later`, {
    statusCode: 503,
    retriable: true,
    retryAfterMs: 10_000,
  });
}

/** Opens (and recovers) the spool in `dir`. */
export function openSpool(options: SpoolOptions): Promise<Spool> {
  return Spool.open(options);
}

export class Spool {
  private readonly segments: Segment[] = [];
  private head: Position = { segment: 1, offset: 0 };
  private queue: Pending[] = [];
  private flushScheduled = false;
  private reserved = 0;
  private lock: Promise<unknown> = Promise.resolve();
  private broken: unknown;
  private closed = false;
  private readonly segmentBytes: number;
  private readonly logger: Logger;
  private dirLock: SpoolLock | undefined;

  private constructor(private readonly options: SpoolOptions) {
    this.segmentBytes = options.segmentBytes ?? defaultSegmentBytes(options.maxBytes);
    this.logger = options.logger.child({ component: 'spool' });
  }

  static async open(options: SpoolOptions): Promise<Spool> {
    const spool = new Spool(options);
    await mkdir(options.dir, { recursive: true });
    // Before recovery, which truncates and deletes files another sink may still be using.
    spool.dirLock = await lockSpoolDir(options.dir);
    try {
      await spool.recover();
    } catch (error) {
      await spool.dirLock.release();
      throw error;
    }
    return spool;
  }

  get maxBytes(): number {
    return this.options.maxBytes;
  }

  /** Bytes written or being written and not yet acknowledged by Kafka. */
  usedBytes(): number {
    let used = this.reserved;
    for (const segment of this.segments)
      used += segment.size - (segment.id === this.head.segment ? this.head.offset : 0);
    return used;
  }

  /**
   * What the segment files take on disk once pending writes land: every byte of every segment, also
   * the drained prefix of the head segment, which stays until the whole segment is drained and deleted.
   */
  diskBytes(): number {
    let bytes = this.reserved;
    for (const segment of this.segments) bytes += segment.size;
    return bytes;
  }

  isEmpty(): boolean {
    return this.usedBytes() === 0;
  }

  /** Whether `bytes` more (whole records, headers included) keep the segment files within maxBytes. */
  hasRoomFor(bytes: number): boolean {
    return this.diskBytes() + bytes <= this.options.maxBytes;
  }

  /** Resolves once the record is on disk (fsync'd); rejects with a 503 AppError when the spool is full. */
  append(messages: readonly OutMessage[]): Promise<void> {
    if (this.closed)
      return Promise.reject(
        new AppError('KAUDIT_ERR_SPOOL', 'spool is closed', { statusCode: 503, retriable: true }),
      );
    if (this.broken)
      return Promise.reject(
        new AppError('KAUDIT_ERR_SPOOL', 'spool is unusable after a failed write', {
          statusCode: 503,
          retriable: true,
          cause: this.broken,
        }),
      );
    const record = encodeRecord(messages);
    if (!this.hasRoomFor(record.length)) return Promise.reject(spoolFullError(this.options.maxBytes));
    this.reserved += record.length;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        void this.locked(() => {
          this.flushScheduled = false;
          return this.flush();
        });
      }
    });
  }

  /** The oldest records not yet acknowledged, up to about maxBytes (at least one record). */
  async read(maxBytes: number): Promise<SpoolBatch | undefined> {
    const messages: OutMessage[] = [];
    let records = 0;
    let bytes = 0;
    let pos = { ...this.head };
    while (bytes < maxBytes) {
      const index = this.segments.findIndex((s) => s.id === pos.segment);
      const segment = this.segments[index];
      if (!segment) break;
      if (pos.offset >= segment.size) {
        const next = this.segments[index + 1];
        if (!next) break;
        pos = { segment: next.id, offset: 0 };
        continue;
      }
      const record = await readRecord(segment.fh, pos.offset, segment.size);
      if (!record.ok) {
        // Written and fsync'd by this process yet unreadable now: the disk lost it. Skip the segment's rest.
        const lost = segment.size - pos.offset;
        this.logger.error(
          { segment: segment.id, offset: pos.offset, bytes: lost, reason: record.reason },
          'corrupt spool record: skipping the rest of the segment',
        );
        this.options.onCorrupt?.(lost, record.reason);
        pos = { segment: segment.id, offset: segment.size };
        continue;
      }
      messages.push(...record.messages);
      records += 1;
      bytes += record.bytes;
      pos = { segment: segment.id, offset: pos.offset + record.bytes };
    }
    if (records === 0 && samePosition(pos, this.head)) return undefined;
    return { messages, records, bytes, end: pos };
  }

  /** Kafka has the batch: move the head past it durably and delete what is fully drained. */
  async ack(batch: SpoolBatch): Promise<void> {
    await this.locked(async () => {
      this.head = batch.end;
      await this.writeHead();
      while (this.segments.length > 1 && this.segments[0]!.id < this.head.segment)
        await this.deleteSegment(0);
      const last = this.segments[this.segments.length - 1]!;
      // Fully drained and nothing waiting: start a fresh segment so the disk space comes back.
      if (
        this.queue.length === 0 &&
        last.id === this.head.segment &&
        this.head.offset >= last.size &&
        last.size > 0
      ) {
        await this.addSegment(last.id + 1);
        this.head = { segment: last.id + 1, offset: 0 };
        await this.writeHead();
        await this.deleteSegment(0);
      }
      this.options.onBytes?.(this.usedBytes());
    });
  }

  /** Finishes pending writes and closes the files; what is unacknowledged stays for the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.locked(async () => {
        await this.flush();
        for (const segment of this.segments) await segment.fh.close();
      });
    } finally {
      await this.dirLock?.release();
    }
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const bytes = batch.reduce((sum, p) => sum + p.record.length, 0);
    try {
      let segment = this.segments[this.segments.length - 1]!;
      if (segment.size > 0 && segment.size + bytes > this.segmentBytes)
        segment = await this.addSegment(segment.id + 1);
      const before = segment.size;
      try {
        await writeAll(
          segment.fh,
          Buffer.concat(
            batch.map((p) => p.record),
            bytes,
          ),
          before,
        );
        await segment.fh.sync();
      } catch (error) {
        // Cut the partial write off so later records never sit behind garbage.
        await segment.fh.truncate(before).catch((truncateError: unknown) => {
          this.broken = truncateError;
        });
        throw error;
      }
      segment.size += bytes;
      this.reserved -= bytes;
      for (const p of batch) p.resolve();
    } catch (error) {
      this.reserved -= bytes;
      this.logger.error({ err: error, bytes }, 'spool write failed');
      const failure = new AppError('KAUDIT_ERR_SPOOL', 'spool write failed', {
        statusCode: 503,
        retriable: true,
        cause: error,
      });
      for (const p of batch) p.reject(failure);
    }
    this.options.onBytes?.(this.usedBytes());
  }

  private async addSegment(id: number): Promise<Segment> {
    const fh = await open(join(this.options.dir, segmentName(id)), 'w+');
    await syncDir(this.options.dir);
    const segment = { id, fh, size: 0 };
    this.segments.push(segment);
    return segment;
  }

  private async deleteSegment(index: number): Promise<void> {
    const [segment] = this.segments.splice(index, 1);
    if (!segment) return;
    await segment.fh.close();
    await unlink(join(this.options.dir, segmentName(segment.id)));
  }

  private async writeHead(): Promise<void> {
    const tmp = join(this.options.dir, `${HEAD_FILE}.tmp`);
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(this.head));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.options.dir, HEAD_FILE));
    await syncDir(this.options.dir);
  }

  private async recover(): Promise<void> {
    const { segments, head, saved } = await recoverSegments({
      dir: this.options.dir,
      logger: this.logger,
      ...(this.options.onCorrupt ? { onCorrupt: this.options.onCorrupt } : {}),
    });
    this.segments.push(...segments);
    if (head) this.head = head;
    if (this.segments.length === 0) {
      await this.addSegment(saved?.segment ?? 1);
      this.head = { segment: this.segments[0]!.id, offset: 0 };
    } else if (!this.segments.some((s) => s.id === this.head.segment)) {
      this.head = { segment: this.segments[0]!.id, offset: 0 };
    }
    await this.writeHead();
    const used = this.usedBytes();
    this.options.onBytes?.(used);
    if (used > 0)
      this.logger.info(
        { bytes: used, segments: this.segments.length },
        'spool holds events from before the restart: draining',
      );
  }
}

const MiB = 1024 * 1024;

function defaultSegmentBytes(maxBytes: number): number {
  return Math.min(64 * MiB, Math.max(64 * 1024, Math.floor(maxBytes / 16)));
}

function samePosition(a: Position, b: Position): boolean {
  return a.segment === b.segment && a.offset === b.offset;
}

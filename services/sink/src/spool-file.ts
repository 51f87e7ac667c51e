import { type FileHandle, open } from 'node:fs/promises';
import { decodePayload, HEADER_BYTES, type OutMessage, readHeader } from './spool-format';

/** Positional file I/O for the spool: whole records in, whole records out, and durable names. */
export type ReadResult = { ok: true; messages: OutMessage[]; bytes: number } | { ok: false; reason: string };

export async function readRecord(fh: FileHandle, offset: number, limit: number): Promise<ReadResult> {
  if (offset + HEADER_BYTES > limit) return { ok: false, reason: 'incomplete header' };
  const header = Buffer.alloc(HEADER_BYTES);
  await readAll(fh, header, offset);
  const check = readHeader(header);
  if (!check.ok) return check;
  if (offset + HEADER_BYTES + check.length > limit) return { ok: false, reason: 'incomplete payload' };
  const payload = Buffer.alloc(check.length);
  await readAll(fh, payload, offset + HEADER_BYTES);
  try {
    return { ok: true, messages: decodePayload(payload, check.crc), bytes: HEADER_BYTES + check.length };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}

export async function readAll(fh: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await fh.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) throw new Error('unexpected end of spool file');
    done += bytesRead;
  }
}

export async function writeAll(fh: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesWritten } = await fh.write(buffer, done, buffer.length - done, position + done);
    done += bytesWritten;
  }
}

/** Makes a created, renamed or deleted file name durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

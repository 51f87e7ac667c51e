import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { decodeAuditText, decodeLine } from '@kaudit/audit-schema';

/** One raw item of an audit log (not yet validated), or a line that could not be decoded. */
export type AuditFileItem =
  | { file: string; line: number; raw: unknown }
  | { file: string; line: number; error: string };

export interface ReadAuditFilesOptions {
  /** Standard input, for the path "-" (tests pass their own stream). */
  stdin?: Readable;
  /** Called as bytes are read, for progress bars. */
  onBytes?: (file: string, bytesRead: number) => void;
}

/**
 * Reads audit logs as the API server's log backend writes them (JSON lines) line by line, so a file of
 * gigabytes never sits in memory; a file whose first line is not a JSON value on its own (a pretty-printed
 * event, an EventList, an Event Hubs batch) is read whole and decoded with decodeAuditText. "-" is stdin.
 * A bad line is yielded as an error with its number and reading goes on.
 */
export async function* readAuditFiles(
  paths: readonly string[],
  options: ReadAuditFilesOptions = {},
): AsyncGenerator<AuditFileItem> {
  for (const path of paths) {
    const file = path === '-' ? '<stdin>' : path;
    const input = path === '-' ? (options.stdin ?? process.stdin) : createReadStream(path);
    yield* readStream(file, input, options.onBytes);
  }
}

async function* readStream(
  file: string,
  input: Readable,
  onBytes?: (file: string, bytesRead: number) => void,
): AsyncGenerator<AuditFileItem> {
  let bytesRead = 0;
  if (onBytes) {
    input.on('data', (chunk: Buffer | string) => {
      bytesRead += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      onBytes(file, bytesRead);
    });
  }
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let mode: 'unknown' | 'lines' | 'document' = 'unknown';
  let document: string[] = [];
  let lineNumber = 0;
  for await (const text of lines) {
    lineNumber += 1;
    if (mode === 'document') {
      document.push(text);
      continue;
    }
    if (mode === 'unknown') {
      if (text.trim() === '' || (lineNumber === 1 && text.trim() === '\uFEFF')) continue;
      const items = decodeLine(text, lineNumber);
      const opensDocument = /^\uFEFF?\s*[[{]/.test(text);
      if (items.length === 1 && !items[0]!.ok && opensDocument) {
        mode = 'document';
        document = [text];
        continue;
      }
      mode = 'lines';
      yield* toItems(file, items);
      continue;
    }
    yield* toItems(file, decodeLine(text, lineNumber));
  }
  if (mode === 'document') {
    // The whole file is one document: line numbers past the first are not meaningful per item.
    const firstLine = lineNumber - document.length + 1;
    for (const item of decodeAuditText(document.join('\n'))) {
      yield item.ok
        ? { file, line: firstLine, raw: item.raw }
        : { file, line: firstLine + item.line - 1, error: item.reason };
    }
    document = [];
  }
}

function* toItems(file: string, items: ReturnType<typeof decodeLine>): Generator<AuditFileItem> {
  for (const item of items) {
    yield item.ok ? { file, line: item.line, raw: item.raw } : { file, line: item.line, error: item.reason };
  }
}

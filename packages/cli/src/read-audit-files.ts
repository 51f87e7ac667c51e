import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { type DecodedItem, decodeAuditText, decodeLine } from '@kaudit/audit-schema';

/**
 * One raw item of an audit log (not yet validated), or a line that could not be decoded; `cluster` when
 * the input names one (a CloudWatch log group, an AKS resourceId, a GKE resource.labels.cluster_name).
 */
export type AuditFileItem =
  | { file: string; line: number; raw: unknown; cluster?: string }
  | { file: string; line: number; error: string; cluster?: string };

export interface ReadAuditFilesOptions {
  /** Standard input, for the path "-" (tests pass their own stream). */
  stdin?: Readable;
  /** Called as bytes are read, for progress bars. */
  onBytes?: (file: string, bytesRead: number) => void;
}

/**
 * Reads audit logs as the API server's log backend writes them (JSON lines) line by line, so a file of
 * gigabytes never sits in memory; a file whose first line is not a JSON value on its own (a pretty-printed
 * event, an EventList, an Event Hubs batch, `gcloud logging read --format=json`, `aws logs
 * filter-log-events` output) is read whole and decoded with decodeAuditText. "-" is stdin. Every shape
 * decodeAuditText knows is read, gzip'd or not (recognised by its magic bytes, so `.gz` and stdin alike).
 * A bad line is yielded as an error with its number and reading goes on.
 */
export async function* readAuditFiles(
  paths: readonly string[],
  options: ReadAuditFilesOptions = {},
): AsyncGenerator<AuditFileItem> {
  for (const path of paths) {
    const file = path === '-' ? '<stdin>' : path;
    const input: Readable = path === '-' ? (options.stdin ?? process.stdin) : createReadStream(path);
    // Progress counts the file's own bytes, compressed or not.
    if (options.onBytes) {
      let bytesRead = 0;
      const onBytes = options.onBytes;
      input.on('data', (chunk: Buffer | string) => {
        bytesRead += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
        onBytes(file, bytesRead);
      });
    }
    yield* readStream(file, gunzipIfGzip(input));
  }
}

async function* readStream(file: string, input: Readable): AsyncGenerator<AuditFileItem> {
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
      yield item.ok ? { ...toItem(file, item, firstLine), line: firstLine } : toItem(file, item, firstLine);
    }
    document = [];
  }
}

function* toItems(file: string, items: DecodedItem[], firstLine = 1): Generator<AuditFileItem> {
  for (const item of items) yield toItem(file, item, firstLine);
}

function toItem(file: string, item: DecodedItem, firstLine: number): AuditFileItem {
  const cluster = item.cluster === undefined ? {} : { cluster: item.cluster };
  return item.ok
    ? { file, line: item.line + firstLine - 1, raw: item.raw, ...cluster }
    : { file, line: item.line + firstLine - 1, error: item.reason, ...cluster };
}

/** The stream itself, or its gunzipped content when it starts with gzip's magic bytes (1f 8b). */
function gunzipIfGzip(input: Readable): Readable {
  const out = new PassThrough();
  let decided = false;
  input.once('error', (error) => out.destroy(error));
  const onData = (chunk: Buffer | string) => {
    if (decided) return;
    decided = true;
    input.off('data', onData);
    input.pause();
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
      const gunzip = createGunzip();
      gunzip.once('error', (error) => out.destroy(error));
      gunzip.pipe(out);
      gunzip.write(bytes);
      input.pipe(gunzip);
    } else {
      out.write(bytes);
      input.pipe(out);
    }
    input.resume();
  };
  input.on('data', onData);
  input.once('end', () => {
    if (!decided) out.end();
  });
  return out;
}

/**
 * The bounded text of one value the splitter keeps (item-splitter.ts): the parts are views of the
 * socket's chunks until text() copies them. Past `limit`, the request or response body being read is
 * cut out and named in `dropped` (the event goes on without it); an item too large without its bodies
 * is marked `tooLarge` and its text let go.
 */
/** The text of one value being kept: the top-level value, or one element of a list. */
export class Capture {
  parts: Buffer[] = [];
  size = 0;
  bytes = 0;
  dropped: string[] = [];
  tooLarge = false;
  /** Keys of the captured object's own fields (depth base + 1), to find its bodies. */
  isObject = false;
  expectKey = false;
  key = '';
  /** While a body value is read: where it started in the text, and whether it is being skipped. */
  body: { name: string; start: number; skipping: boolean } | undefined;
  /** Set by the splitter when the top-level object's list is read: its bytes are not kept. */
  paused = false;

  constructor(
    readonly base: number,
    readonly limit: number,
  ) {}

  append(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    this.bytes += to - from;
    if (this.tooLarge || this.paused || this.body?.skipping) return;
    if (this.size + (to - from) > this.limit) {
      if (this.body) {
        // Drop what was read of this body and the rest of it; the event goes on without it.
        this.cut(this.body.start);
        this.body.skipping = true;
        this.dropped.push(this.body.name);
        return;
      }
      this.tooLarge = true;
      this.parts = [];
      return;
    }
    this.parts.push(chunk.subarray(from, to));
    this.size += to - from;
  }

  /** Appends text the input did not have (`null` for a dropped body, `[]` for an emptied list). */
  insert(text: string): void {
    if (this.tooLarge) return;
    const buffer = Buffer.from(text);
    this.parts.push(buffer);
    this.size += buffer.length;
  }

  private cut(length: number): void {
    let keep = length;
    const parts: Buffer[] = [];
    for (const part of this.parts) {
      if (keep <= 0) break;
      parts.push(part.length <= keep ? part : part.subarray(0, keep));
      keep -= part.length;
    }
    this.parts = parts;
    this.size = length;
  }

  text(): Buffer | undefined {
    // Copied: the parts are views of socket chunks, which must not be kept alive by a long list.
    return this.tooLarge ? undefined : Buffer.concat(this.parts, this.size);
  }
}

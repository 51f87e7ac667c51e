/**
 * Splits a request body into its items as the bytes arrive (the shapes and bounds: split-item.ts). The
 * scanner only tracks strings and nesting; JSON.parse of each item's text does the validation.
 */

import { Capture } from './item-capture';
import {
  BACKSLASH,
  BODY_KEYS,
  CLOSE_ARRAY,
  CLOSE_OBJECT,
  COLON,
  COMMA,
  NEWLINE,
  OPEN_ARRAY,
  OPEN_OBJECT,
  QUOTE,
  stringStop,
} from './json-bytes';
import { type ItemContainer, SplitError, type SplitterOptions } from './split-item';

export { type ItemContainer, SplitError, type SplitItem, type SplitterOptions } from './split-item';

/** The keys the splitter compares: their first letters, and the longest one's length. */
const KEY_I = 0x69; // items
const KEY_R = 0x72; // records, requestObject, responseObject
const LONGEST_KEY = Math.max('items'.length, 'records'.length, ...[...BODY_KEYS].map((key) => key.length));

export class ItemSplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private line = 1;
  private lineBroken = false;
  /** The top-level value (undefined between values). */
  private outer: Capture | undefined;
  /** The list element being read. */
  private inner: Capture | undefined;
  /** Depth at which list elements sit (1 for a top-level array, 2 for `items`/`records`); 0: no list. */
  private listDepth = 0;
  private container: ItemContainer = 'value';
  private topExpectKey = false;
  private topKey = '';
  private capturingKey: 'top' | 'inner' | undefined;
  private keyBuffer = '';
  /** The key being captured cannot be one the splitter compares (appendKey). */
  private keyDropped = false;
  private values = 0;
  private rests: Buffer[] = [];
  private started = false;

  constructor(private readonly options: SplitterOptions) {}

  push(chunk: Buffer): void {
    let i = 0;
    if (!this.started) {
      this.started = true;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3; // UTF-8 BOM
    }
    let mark = i; // bytes from mark to i are appended to the open captures at the next flush
    const flush = (to: number) => {
      this.outer?.append(chunk, mark, to);
      this.inner?.append(chunk, mark, to);
      mark = to;
    };
    for (; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.inString) {
        if (!this.escaped) {
          // Fast path: most of an audit event is string content; skip to where it may end.
          const from = i;
          i = stringStop(chunk, i, this.options.format === 'ndjson');
          if (this.capturingKey) this.appendKey(chunk, from, i); // an escaped byte is left out of a key
          if (i >= chunk.length) break;
        }
        const b = chunk[i]!;
        if (b === NEWLINE && this.options.format === 'ndjson') {
          // JSON strings hold no raw newline: the line ended inside one.
          flush(i);
          this.lineBroken = true;
          this.lineEnds();
          mark = i + 1;
          continue;
        }
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) {
          this.inString = false;
          if (this.capturingKey) this.endKey();
        }
        continue;
      }
      if (b === 0x20 || b === 0x09 || b === 0x0d) continue;
      if (b === NEWLINE) {
        if (this.options.format === 'ndjson') {
          flush(i);
          if (this.depth > 0) this.lineBroken = true;
          this.lineEnds();
          mark = i + 1;
        }
        continue;
      }
      if (this.lineBroken) continue;
      if (this.depth === 0 && !this.outer && this.listDepth === 0) {
        // The first byte of a top-level value.
        if (b === CLOSE_OBJECT || b === CLOSE_ARRAY || b === COMMA || b === COLON) {
          if (this.options.format === 'json')
            throw new SplitError('body is not valid JSON (unbalanced brackets)');
          this.lineBroken = true;
          continue;
        }
        if (this.options.format === 'json' && this.values > 0)
          throw new SplitError(
            'body holds more than one JSON value (use application/x-ndjson for JSON lines)',
          );
        this.values += 1;
        mark = i;
        if (b === OPEN_ARRAY) {
          this.listDepth = 1;
          this.container = 'list';
          this.depth = 1;
          mark = i + 1;
          continue;
        }
        this.container = 'value';
        this.outer = new Capture(0, this.options.maxItemBytes);
        if (b === OPEN_OBJECT) {
          this.depth = 1;
          this.topExpectKey = true;
          this.outer.isObject = true;
          this.outer.expectKey = true;
          continue;
        }
        if (b === QUOTE) this.inString = true;
        continue; // a scalar: ends at a newline (ndjson) or the end of the body
      }
      // A list element starts.
      if (
        this.listDepth > 0 &&
        this.depth === this.listDepth &&
        !this.inner &&
        b !== COMMA &&
        b !== CLOSE_ARRAY
      ) {
        flush(i);
        this.inner = new Capture(this.listDepth, this.options.maxItemBytes);
        if (b === OPEN_OBJECT) {
          this.inner.isObject = true;
          this.inner.expectKey = true;
        }
      }
      switch (b) {
        case QUOTE:
          this.inString = true;
          if (!this.startKeyIfExpected()) this.valueStarts(i, b, flush);
          break;
        case OPEN_OBJECT:
        case OPEN_ARRAY:
          this.valueStarts(i, b, flush);
          this.depth += 1;
          break;
        case CLOSE_OBJECT:
        case CLOSE_ARRAY: {
          const closing = this.depth;
          if (this.inner && closing === this.inner.base) {
            // The list itself closes: its last element ends before this byte.
            flush(i);
            this.emitInner();
          }
          this.bodyEnds(closing, i, flush, true);
          if (closing === 0) {
            if (this.options.format === 'json')
              throw new SplitError('body is not valid JSON (unbalanced brackets)');
            this.lineBroken = true;
            break;
          }
          this.depth -= 1;
          if (this.listDepth > 0 && closing === this.listDepth) {
            // The list closed: for items/records, the rest of the top-level object is kept again.
            flush(i);
            this.listDepth = 0;
            if (this.outer) {
              this.outer.paused = false;
              this.outer.insert('[]');
              mark = i + 1;
            } else {
              mark = i + 1;
              if (this.depth === 0) this.valueEnds();
            }
            break;
          }
          if (this.inner && this.depth === this.inner.base) {
            flush(i + 1);
            this.emitInner();
          }
          if (this.depth === 0 && this.outer) {
            flush(i + 1);
            this.valueEnds();
          }
          break;
        }
        case COMMA:
          this.bodyEnds(this.depth, i, flush, false);
          if (this.inner && this.depth === this.inner.base) {
            flush(i);
            this.emitInner();
            mark = i + 1;
          }
          if (this.outer?.isObject && this.depth === 1) {
            this.topExpectKey = true;
            this.outer.expectKey = true;
          }
          if (this.inner?.isObject && this.depth === this.inner.base + 1) this.inner.expectKey = true;
          break;
        case COLON:
          break;
        default:
          this.valueStarts(i, b, flush);
      }
    }
    flush(chunk.length);
  }

  /** Ends the body; returns the top-level object's other fields (for an EventList's `kind`). */
  end(): { rest: unknown } {
    if (this.options.format === 'ndjson') {
      if (this.depth > 0 || this.inString) this.lineBroken = true;
      this.lineEnds();
      return { rest: undefined };
    }
    if (this.depth > 0 || this.inString)
      throw new SplitError('body is not valid JSON (unexpected end of input)');
    if (this.outer) this.valueEnds();
    if (this.values === 0) throw new SplitError('body is empty');
    const rest = this.rests[0];
    if (rest === undefined) return { rest: undefined };
    try {
      return { rest: JSON.parse(rest.toString('utf8')) };
    } catch {
      throw new SplitError('body is not valid JSON');
    }
  }

  /** At a `"`: true when it opens a key this splitter needs to know (a field of a captured object). */
  private startKeyIfExpected(): boolean {
    if (this.inner && this.depth === this.inner.base + 1 && this.inner.expectKey) this.capturingKey = 'inner';
    else if (!this.inner && this.outer && this.depth === 1 && this.topExpectKey) this.capturingKey = 'top';
    else {
      this.capturingKey = undefined;
      return false;
    }
    this.keyBuffer = '';
    this.keyDropped = false;
    return true;
  }

  /**
   * Bytes [from, to) of a key being captured, as Latin-1. Only `items`, `records` and BODY_KEYS are ever
   * compared, so a key that cannot be one of them (another first letter, longer) is dropped at once
   * instead of being built: most keys of an event are captured, and making each a string was a quarter
   * of the splitter's time.
   */
  private appendKey(chunk: Buffer, from: number, to: number): void {
    if (this.keyDropped || to <= from) return;
    if (this.keyBuffer === '' && chunk[from] !== KEY_I && chunk[from] !== KEY_R) {
      this.keyDropped = true;
      return;
    }
    if (this.keyBuffer.length + (to - from) > LONGEST_KEY) {
      this.keyDropped = true;
      return;
    }
    this.keyBuffer += chunk.toString('latin1', from, to);
  }

  private endKey(): void {
    const key = this.keyDropped ? '' : this.keyBuffer;
    if (this.capturingKey === 'inner' && this.inner) {
      this.inner.key = key;
      this.inner.expectKey = false;
    } else if (this.capturingKey === 'top' && this.outer) {
      this.topKey = key;
      this.outer.key = key;
      this.topExpectKey = false;
      this.outer.expectKey = false;
    }
    this.capturingKey = undefined;
  }

  /** A value's first byte (`{`, `[`, a digit, a letter) at depth `this.depth`. */
  private valueStarts(i: number, b: number, flush: (to: number) => void): void {
    const capture = this.inner ?? this.outer;
    if (!capture) return;
    if (this.depth === capture.base + 1 && !capture.expectKey && capture.key !== '' && !capture.body) {
      if (
        capture === this.outer &&
        !this.inner &&
        this.listDepth === 0 &&
        b === OPEN_ARRAY &&
        (this.topKey === 'items' || this.topKey === 'records')
      ) {
        // `items`/`records` of the top-level object: its elements are the items, not part of `rest`.
        flush(i);
        capture.paused = true; // until the list closes; then `[]` stands in for it
        this.listDepth = 2;
        this.container = this.topKey;
        capture.key = '';
        return;
      }
      if (BODY_KEYS.has(capture.key)) {
        flush(i);
        capture.body = { name: capture.key, start: capture.size, skipping: false };
      }
      capture.key = '';
    }
  }

  /** At `,` or a closing bracket at `depth`: a body of the capture one level up may end here. */
  private bodyEnds(depth: number, i: number, flush: (to: number) => void, closing: boolean): void {
    const capture = this.inner ?? this.outer;
    const body = capture?.body;
    if (!capture || !body) return;
    // A bracketed body ends with its own closing bracket (depth base + 2 closing); a scalar one at the
    // `,` or `}` of its object (depth base + 1).
    const ends = closing
      ? depth === capture.base + 2 || depth === capture.base + 1
      : depth === capture.base + 1;
    if (!ends) return;
    const through = closing && depth === capture.base + 2 ? i + 1 : i;
    flush(through);
    if (body.skipping) capture.insert('null');
    capture.body = undefined;
  }

  private emitInner(): void {
    const inner = this.inner;
    if (!inner) return;
    this.inner = undefined;
    if (inner.bytes === 0) return;
    this.emit(inner, this.container);
  }

  private valueEnds(): void {
    const outer = this.outer;
    this.outer = undefined;
    if (!outer) return;
    if (this.container === 'items' || this.container === 'records') {
      const text = outer.text();
      if (text) this.rests.push(text);
    } else this.emit(outer, 'value');
    this.container = 'value';
    this.topKey = '';
  }

  private emit(capture: Capture, container: ItemContainer): void {
    const text = capture.text();
    this.options.onItem({
      text,
      bytes: capture.bytes,
      line: this.line,
      container,
      dropped: capture.dropped,
      ...(text === undefined ? { tooLarge: true as const } : {}),
    });
  }

  /** JSON lines: the end of a line. One that ended inside a string or with brackets open is one bad item. */
  private lineEnds(): void {
    if (this.lineBroken) {
      this.options.onItem({
        text: undefined,
        bytes: 0,
        line: this.line,
        container: 'value',
        dropped: [],
        broken: true,
      });
      this.resetValue();
    } else if (this.outer) this.valueEnds();
    this.lineBroken = false;
    this.line += 1;
  }

  private resetValue(): void {
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.outer = undefined;
    this.inner = undefined;
    this.listDepth = 0;
    this.container = 'value';
    this.capturingKey = undefined;
    this.topExpectKey = false;
  }
}

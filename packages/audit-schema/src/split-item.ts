/**
 * Splits a request body into its items as the bytes arrive, so a batch is never held as one parsed
 * document: memory grows with the largest item, not with the batch (400 events of 150 KB are 60 MB of
 * JSON and several times that as objects). Each item's text is handed to JSON.parse on its own, which
 * is an order of magnitude faster than building values token by token in JavaScript.
 *
 * Shapes, per top-level value (`json`: exactly one; `ndjson`: one a line, a broken line is one bad item):
 * - an object with an `items` or `records` array (EventList, Azure Event Hubs batch): each element is an
 *   item of that container; the object's other fields are returned by `end()` (`rest`);
 * - an array: each element is an item (`list`);
 * - anything else: the value itself is one item (`value`).
 *
 * Bounded: an item's text is kept up to `maxItemBytes`. Past that, the `requestObject` or
 * `responseObject` being read (and any later one) is replaced by `null` and named in `dropped`, so the
 * event still goes on, truncated; an item too large without its bodies is reported with `tooLarge`.
 */

export type ItemContainer = 'items' | 'records' | 'list' | 'value';

export interface SplitItem {
  /** The item's JSON text (dropped bodies as `null`); undefined when it is too large or its line broken. */
  text: Buffer | undefined;
  /** Bytes the item took in the body. */
  bytes: number;
  /** 1 for a JSON body; the line number for JSON lines. */
  line: number;
  container: ItemContainer;
  /** Body fields replaced by null to keep within maxItemBytes. */
  dropped: string[];
  tooLarge?: true;
  /** JSON lines: the line ended inside a string or with brackets open. */
  broken?: true;
}

export interface SplitterOptions {
  format: 'json' | 'ndjson';
  maxItemBytes: number;
  onItem: (item: SplitItem) => void;
}

export class SplitError extends Error {
  override name = 'SplitError';
}

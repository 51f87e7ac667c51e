import fc from 'fast-check';
import { ItemSplitter, SplitError, type SplitItem, type SplitterOptions } from './item-splitter';
import { BODY_KEYS } from './json-bytes';

function split(
  body: string | Buffer,
  options: Partial<SplitterOptions> = {},
  chunkSizes: number[] = [],
): { items: SplitItem[]; rest: unknown } {
  const items: SplitItem[] = [];
  const splitter = new ItemSplitter({
    format: 'json',
    maxItemBytes: 1 << 20,
    onItem: (item) => items.push(item),
    ...options,
  });
  const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body);
  let at = 0;
  for (const size of chunkSizes) {
    if (at >= buffer.length) break;
    splitter.push(buffer.subarray(at, at + size));
    at += size;
  }
  if (at < buffer.length) splitter.push(buffer.subarray(at));
  return { items, rest: splitter.end().rest };
}

const parsed = (items: SplitItem[]) =>
  items.map((item) => (item.text ? JSON.parse(item.text.toString()) : undefined));

describe('audit-schema > item-splitter', () => {
  it('splits an EventList into its items and keeps the list fields apart', () => {
    const list = {
      kind: 'EventList',
      apiVersion: 'audit.k8s.io/v1',
      metadata: {},
      items: [{ a: 1 }, { b: [1, 2] }, 'x', 3],
    };
    const { items, rest } = split(JSON.stringify(list, null, 2));
    expect(parsed(items)).toEqual(list.items);
    expect(items.every((item) => item.container === 'items')).toBe(true);
    expect(rest).toEqual({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: [] });
  });

  it('splits an Event Hubs batch, a JSON array, and a single value', () => {
    expect(split('{"records":[{"properties":{"log":"{}"}}]}').items.map((i) => i.container)).toEqual([
      'records',
    ]);
    const array = split('\uFEFF [ {"a":"]}"} , [1,{"b":2}] ]');
    expect(parsed(array.items)).toEqual([{ a: ']}' }, [1, { b: 2 }]]);
    expect(array.items.map((i) => i.container)).toEqual(['list', 'list']);
    const single = split('{"kind":"Event","user":{"items":[1]},"items":5}');
    expect(parsed(single.items)).toEqual([{ kind: 'Event', user: { items: [1] }, items: 5 }]);
    expect(single.items[0]!.container).toBe('value');
  });

  it('refuses what is no single JSON value', () => {
    expect(() => split('{"a":1} {"b":2}')).toThrow(SplitError);
    expect(() => split('{"items":[{"a":1}')).toThrow(/unexpected end/);
    expect(() => split('   ')).toThrow(/empty/);
    expect(() => split('{"a":1}}')).toThrow(/unbalanced/);
    expect(() => split('{"a":1}, 2')).toThrow(SplitError);
  });

  it('reads JSON lines, one value a line, a broken line as one bad item', () => {
    const text = [
      '{"a":1}',
      '',
      '{"kind":"EventList","items":[{"b":2},{"c":3}]}',
      '[{"d":4},{"e":5}]',
      '{"broken": "no end',
      '{"f":6}}',
      '{"g":7}',
    ].join('\n');
    const { items } = split(text, { format: 'ndjson' });
    expect(items.map((i) => [i.line, i.broken ? 'broken' : JSON.parse(i.text!.toString())])).toEqual([
      [1, { a: 1 }],
      [3, { b: 2 }],
      [3, { c: 3 }],
      [4, { d: 4 }],
      [4, { e: 5 }],
      [5, 'broken'],
      [6, { f: 6 }],
      [6, 'broken'],
      [7, { g: 7 }],
    ]);
  });

  it('drops the bodies of an item past maxItemBytes and keeps the event', () => {
    const big = 'x'.repeat(5000);
    const event = {
      auditID: 'a',
      requestObject: { data: big },
      verb: 'get',
      responseObject: big,
      stage: 'ResponseComplete',
    };
    const { items } = split(
      JSON.stringify({ items: [event, { auditID: 'b' }] }),
      { maxItemBytes: 2000 },
      [7, 300, 11],
    );
    expect(parsed(items)).toEqual([
      { auditID: 'a', requestObject: null, verb: 'get', responseObject: null, stage: 'ResponseComplete' },
      { auditID: 'b' },
    ]);
    expect(items[0]!.dropped).toEqual(['requestObject', 'responseObject']);
    expect(items[0]!.bytes).toBeGreaterThan(10_000);
    const alone = split(JSON.stringify(event), { maxItemBytes: 2000 });
    expect(parsed(alone.items)[0]).toMatchObject({ requestObject: null, responseObject: null });
  });

  it('knows a body key by its whole name, also split byte by byte, and no other key', () => {
    const big = 'x'.repeat(5000);
    const event = { responseObjects: 'kept', r: 1, items: 2, requestObject: { data: big }, rEquestObject: 3 };
    const bytes = JSON.stringify(event).length;
    for (const chunks of [[], Array.from({ length: bytes }, () => 1)]) {
      const { items } = split(JSON.stringify(event), { maxItemBytes: 2000 }, chunks);
      expect(items[0]!.dropped).toEqual(['requestObject']);
      expect(parsed(items)[0]).toEqual({ ...event, requestObject: null });
    }
    // The keys the splitter compares all start with the letters appendKey looks for.
    expect([...BODY_KEYS, 'items', 'records'].every((key) => key[0] === 'r' || key[0] === 'i')).toBe(true);
  });

  it('reports an item too large without its bodies', () => {
    const { items } = split(JSON.stringify([{ user: 'u'.repeat(5000) }, { ok: 1 }]), { maxItemBytes: 1000 });
    expect(items[0]).toMatchObject({ text: undefined, tooLarge: true });
    expect(parsed(items)[1]).toEqual({ ok: 1 });
  });

  // Property: whatever the document and however the bytes are cut into chunks, the items are the ones
  // JSON.parse finds, and nothing is dropped below the bound.
  const json = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.string({ unit: 'grapheme' }),
      fc.integer(),
      fc.constant(null),
      fc.boolean(),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(
        fc.oneof(fc.string(), fc.constantFrom('items', 'records', 'requestObject', 'responseObject', 'kind')),
        tie('value'),
        { maxKeys: 4 },
      ),
    ),
  })).value;

  it('finds exactly the items JSON.parse finds, for any document and any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(json, { maxLength: 5 }),
        fc.dictionary(fc.constantFrom('kind', 'apiVersion', 'metadata'), json, { maxKeys: 3 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { maxLength: 40 }),
        fc.boolean(),
        (elements, fields, chunks, asArray) => {
          const doc = asArray ? elements : { ...fields, items: elements };
          const body = JSON.stringify(doc, null, chunks.length % 3);
          const { items, rest } = split(body, {}, chunks);
          expect(parsed(items)).toEqual(elements);
          expect(items.every((i) => i.dropped.length === 0)).toBe(true);
          if (!asArray) expect(rest).toEqual({ ...fields, items: [] });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('scans a 60 MB batch holding one item at a time', () => {
    const event = JSON.stringify({ auditID: 'x', requestObject: { data: 'y'.repeat(150_000) } });
    const body = Buffer.from(`{"kind":"EventList","items":[${Array(400).fill(event).join(',')}]}`);
    let count = 0;
    let largest = 0;
    const splitter = new ItemSplitter({
      format: 'json',
      maxItemBytes: 1 << 20,
      onItem: (item) => {
        count += 1;
        largest = Math.max(largest, item.text!.length);
      },
    });
    for (let at = 0; at < body.length; at += 65_536) splitter.push(body.subarray(at, at + 65_536));
    splitter.end();
    expect(count).toBe(400);
    expect(largest).toBe(event.length);
  });
});

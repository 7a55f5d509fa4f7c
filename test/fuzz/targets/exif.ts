/**
 * EXIF orientation (src/image/exif.ts) over generated TIFF structures: both byte orders and
 * junk ones, right and wrong magic, IFD offsets in, at the edge of and past the data, entry
 * counts up to 65535, orientation entries of every type, IFD offsets that point back at the
 * header (a loop for a reader that followed them); then generic mutations on top. The function
 * never throws: every input gives an integer 1..8, and a well-formed IFD0 gives its value.
 */
import fc from 'fast-check';
import { readExifOrientation } from '../../../src/image/exif';
import { genericOp, Violation, type Case, type Target } from '../harness';

interface Entry {
  tag: number;
  type: number;
  count: number;
  value: number;
}

const entry: fc.Arbitrary<Entry> = fc.record({
  tag: fc.oneof(fc.constant(0x0112), fc.constantFrom(0x010f, 0x8769, 0x0100, 0xffff, 0), fc.integer({ min: 0, max: 0xffff })),
  type: fc.oneof(fc.constantFrom(3, 4), fc.integer({ min: 0, max: 13 }), fc.constant(0xffff)),
  count: fc.oneof(fc.constant(1), fc.nat()),
  value: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constantFrom(0x10000 + 6, 0xffffffff, 0x0600, 0x06000000), fc.nat()),
});

interface Tiff {
  prefix: boolean;
  order: 'II' | 'MM' | 'IM' | 'xx';
  magic: number;
  ifd: number | 'end' | 'loop' | null;
  count: number | null;
  entries: Entry[];
  next: number;
  tail: Uint8Array;
}

const tiff: fc.Arbitrary<Tiff> = fc.record({
  prefix: fc.boolean(),
  order: fc.constantFrom('II' as const, 'MM' as const, 'II' as const, 'MM' as const, 'IM' as const, 'xx' as const),
  magic: fc.oneof(fc.constant(42), fc.constant(42), fc.constantFrom(0, 43, 0x2a00, 0xffff)),
  ifd: fc.oneof(fc.constant(null), fc.constant(null), fc.constantFrom('end' as const, 'loop' as const, 0, 1, 7, 0xffffffff, 0x7fffffff), fc.nat({ max: 300 })),
  count: fc.oneof(fc.constant(null), fc.constant(null), fc.constantFrom(0, 0xffff, 0x8000), fc.nat({ max: 40 })),
  entries: fc.array(entry, { maxLength: 8 }),
  next: fc.oneof(fc.constant(0), fc.constant(8), fc.nat()),
  tail: fc.uint8Array({ maxLength: 16 }),
});

function build(t: Tiff): { bytes: Uint8Array; expected: number | null } {
  const little = t.order !== 'MM';
  const n = t.entries.length;
  const size = 8 + 2 + 12 * n + 4;
  const body = new Uint8Array(size + t.tail.length);
  const v = new DataView(body.buffer);
  body[0] = t.order.charCodeAt(0);
  body[1] = t.order.charCodeAt(1);
  v.setUint16(2, t.magic, little);
  const ifd = t.ifd === null ? 8 : t.ifd === 'end' ? size - 1 : t.ifd === 'loop' ? 0 : t.ifd;
  v.setUint32(4, ifd >>> 0, little);
  v.setUint16(8, t.count ?? n, little);
  t.entries.forEach((e, i) => {
    const at = 10 + 12 * i;
    v.setUint16(at, e.tag, little);
    v.setUint16(at + 2, e.type, little);
    v.setUint32(at + 4, e.count >>> 0, little);
    if (e.type === 3) {
      v.setUint16(at + 8, e.value & 0xffff, little);
      v.setUint16(at + 10, 0, little);
    } else v.setUint32(at + 8, e.value >>> 0, little);
  });
  v.setUint32(10 + 12 * n, t.next >>> 0, little);
  body.set(t.tail, size);
  const bytes = t.prefix ? Uint8Array.of(0x45, 0x78, 0x69, 0x66, 0, 0, ...body) : body;
  // The oracle, for well-formed structures only: IFD0 at 8 with its true count.
  let expected: number | null = null;
  if ((t.order === 'II' || t.order === 'MM') && t.magic === 42 && t.ifd === null && t.count === null) {
    const e = t.entries.find((x) => x.tag === 0x0112);
    const value = !e ? 1 : e.type === 3 ? e.value & 0xffff : e.type === 4 ? e.value >>> 0 : 0;
    expected = value >= 1 && value <= 8 ? value : 1;
  }
  return { bytes, expected };
}

/** Inputs carry the oracle's answer in front (one byte: 0 for none), so regression files replay it. */
const cases: fc.Arbitrary<Case> = fc.record({ t: tiff, ops: fc.array(genericOp, { maxLength: 3 }) }).map(({ t, ops }) => {
  const { bytes, expected } = build(t);
  let b = bytes;
  for (const o of ops) b = o.apply(b, [bytes]);
  const oracle = ops.length ? 0 : (expected ?? 0);
  const how = `exif: ${JSON.stringify({ ...t, tail: t.tail.length })}${ops.length ? ` | ${ops.map((o) => o.what).join(' | ')}` : ''}`;
  return { bytes: Uint8Array.of(oracle, ...b), how };
});

export const exif: Target = {
  name: 'exif',
  arbitrary: cases,
  check(input) {
    const oracle = input[0] ?? 0;
    // A view at an offset, as the callers pass (a subarray of the file).
    const got = readExifOrientation(input.subarray(1));
    if (!(Number.isInteger(got) && got >= 1 && got <= 8)) throw new Violation(`orientation ${got}`);
    if (oracle && got !== oracle) throw new Violation(`orientation ${got}, the IFD says ${oracle}`);
  },
  timeBoundMs: 100,
};

/**
 * Structure of the image formats as the mutations see it: JPEG segments and scans, PNG chunks
 * (and their zlib stream), GIF blocks, RIFF chunks. Lenient: a damaged file gives the structure
 * up to the damage. Plus the format-specific mutations (Huffman tables, markers in entropy data,
 * IDAT splits and recompressed zlib streams, LZW code sizes).
 */
import { crc32, pngChunk } from '../../models/src/png';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, inflateSync, constants as zc } from 'node:zlib';
import fc from 'fast-check';
import { concat, type FormatOps, type Op, type Struct } from './harness';

export const ROOT = new URL('../../', import.meta.url).pathname;

/** The corpus: files of `dirs` (repo-relative) with one of `exts`, at most `maxBytes` each, sorted by name. */
export function corpus(dirs: string[], exts: string[], maxBytes = 64 * 1024): Array<{ name: string; bytes: Uint8Array }> {
  const out: Array<{ name: string; bytes: Uint8Array }> = [];
  for (const dir of dirs) {
    for (const f of readdirSync(join(ROOT, dir)).sort()) {
      const path = join(ROOT, dir, f);
      if (!exts.some((e) => f.endsWith(e)) || statSync(path).size > maxBytes) continue;
      out.push({ name: `${dir.split('/').pop()}/${f}`, bytes: new Uint8Array(readFileSync(path)) });
    }
  }
  if (!out.length) throw new Error(`empty corpus: ${dirs.join(', ')}`);
  return out;
}

const u16be = (b: Uint8Array, i: number): number => ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
const u32be = (b: Uint8Array, i: number): number => (((b[i] ?? 0) << 24) | ((b[i + 1] ?? 0) << 16) | ((b[i + 2] ?? 0) << 8) | (b[i + 3] ?? 0)) >>> 0;
const u32le = (b: Uint8Array, i: number): number => ((b[i] ?? 0) | ((b[i + 1] ?? 0) << 8) | ((b[i + 2] ?? 0) << 16) | ((b[i + 3] ?? 0) << 24)) >>> 0;
const ascii = (b: Uint8Array, i: number, n: number): string => String.fromCharCode(...b.subarray(i, i + n));

// ---- JPEG -------------------------------------------------------------------------------------

const standalone = (c: number): boolean => c === 0x01 || (c >= 0xd0 && c <= 0xd8);

/** Segments (marker, length, payload) from SOI on, each scan's entropy-coded data as its own struct. */
export function jpegStructs(b: Uint8Array): Struct[] {
  const out: Struct[] = [];
  let pos = 0;
  while (pos + 1 < b.length && out.length < 256) {
    if (b[pos] !== 0xff) {
      // Entropy-coded data (after SOS) or stray bytes: up to the next marker that is not RSTn or FF 00.
      let end = pos;
      while (end + 1 < b.length && !(b[end] === 0xff && b[end + 1] !== 0 && b[end + 1] !== 0xff && !(b[end + 1]! >= 0xd0 && b[end + 1]! <= 0xd7))) end++;
      if (end + 1 >= b.length) end = b.length;
      out.push({ at: pos, dataStart: pos, dataEnd: end, end, name: 'data' });
      pos = end;
      continue;
    }
    const code = b[pos + 1]!;
    if (code === 0xff) {
      pos++;
      continue;
    }
    if (standalone(code) || code === 0xd9) {
      out.push({ at: pos, dataStart: pos + 2, dataEnd: pos + 2, end: pos + 2, type: { at: pos + 1, size: 1 }, name: `m${code.toString(16)}` });
      pos += 2;
      if (code === 0xd9) break;
      continue;
    }
    const len = u16be(b, pos + 2);
    const end = Math.min(b.length, pos + 2 + Math.max(2, len));
    out.push({ at: pos, dataStart: pos + 4, dataEnd: end, end, len: { at: pos + 2, size: 2, big: true, bias: 2 }, type: { at: pos + 1, size: 1 }, name: `m${code.toString(16)}` });
    pos = end;
  }
  return out;
}

const JPEG_CODES = [0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc8, 0xc9, 0xca, 0xcc, 0xcf, 0xd0, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xee, 0xef, 0xf0, 0xfe, 0x01, 0x02, 0x00, 0xff];

const jpegExtra: fc.Arbitrary<Op> = fc.oneof(
  // Huffman tables: the class/id byte, the 16 code counts, the symbols.
  fc.record({ i: fc.nat(), k: fc.nat({ max: 40 }), v: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 1, 2, 0x10, 0x11, 0xff)) }).map(({ i, k, v }) => ({
    what: `DHT #${i}: byte ${k} of its first table to ${v}`,
    apply: (b: Uint8Array) => {
      const dht = jpegStructs(b).filter((s) => s.name === 'mc4');
      const s = dht[i % Math.max(1, dht.length)];
      if (!s || s.dataStart + k >= s.dataEnd) return b;
      const x = b.slice();
      x[s.dataStart + k] = v;
      return x;
    },
  })),
  // Markers inside entropy-coded data: RSTn out of order, FF 00, a stray marker, EOI early.
  fc.record({ i: fc.nat(), p: fc.nat(), code: fc.constantFrom(0xd0, 0xd1, 0xd7, 0x00, 0xd9, 0xc4, 0xda, 0xdd, 0xff) }).map(({ i, p, code }) => ({
    what: `scan data #${i}: insert FF ${code.toString(16)} at ${p}`,
    apply: (b: Uint8Array) => {
      const data = jpegStructs(b).filter((s) => s.name === 'data' && s.dataEnd > s.dataStart);
      const s = data[i % Math.max(1, data.length)];
      if (!s) return b;
      const at = s.dataStart + (p % (s.dataEnd - s.dataStart));
      return concat(b.subarray(0, at), Uint8Array.of(0xff, code), b.subarray(at));
    },
  })),
  // SOF: precision, size, component count and sampling factors.
  fc.record({ field: fc.constantFrom('precision', 'height', 'width', 'count', 'sampling', 'tq'), c: fc.nat({ max: 3 }), v: fc.constantFrom(0, 1, 2, 3, 4, 5, 8, 12, 16, 0x11, 0x12, 0x21, 0x22, 0x41, 0x44, 0x14, 0x00, 0xff, 255, 256, 4096, 65535, 65500) }).map(({ field, c, v }) => ({
    what: `SOF: ${field}${field === 'sampling' || field === 'tq' ? ` of component ${c}` : ''} to ${v}`,
    apply: (b: Uint8Array) => {
      const s = jpegStructs(b).find((t) => /^mc[0-35-7]$|^mc[9abd-f]$/.test(t.name));
      if (!s) return b;
      const x = b.slice();
      const d = s.dataStart;
      const set16 = (at: number) => { if (at + 1 < x.length) { x[at] = (v >> 8) & 0xff; x[at + 1] = v & 0xff; } };
      if (field === 'precision') x[d] = v & 0xff;
      else if (field === 'height') set16(d + 1);
      else if (field === 'width') set16(d + 3);
      else if (field === 'count') x[d + 5] = v & 0xff;
      else if (field === 'sampling' && d + 7 + 3 * c < x.length) x[d + 7 + 3 * c] = v & 0xff;
      else if (field === 'tq' && d + 8 + 3 * c < x.length) x[d + 8 + 3 * c] = v & 0xff;
      return x;
    },
  })),
  // SOS: component count, selectors, table ids, spectral selection and successive approximation.
  fc.record({ i: fc.nat(), k: fc.nat({ max: 10 }), v: fc.constantFrom(0, 1, 2, 3, 4, 5, 0x10, 0x11, 0x22, 0x3f, 0x40, 0xff, 63, 64, 0x12, 0x21, 0xd) }).map(({ i, k, v }) => ({
    what: `SOS #${i}: header byte ${k} to ${v}`,
    apply: (b: Uint8Array) => {
      const sos = jpegStructs(b).filter((s) => s.name === 'mda');
      const s = sos[i % Math.max(1, sos.length)];
      if (!s || s.dataStart + k >= s.dataEnd) return b;
      const x = b.slice();
      x[s.dataStart + k] = v;
      return x;
    },
  })),
);

export const JPEG: FormatOps = { parse: jpegStructs, types: JPEG_CODES, extra: jpegExtra };

// ---- PNG --------------------------------------------------------------------------------------

export { crc32, pngChunk } from '../../models/src/png';

export function pngStructs(b: Uint8Array): Struct[] {
  const out: Struct[] = [];
  let pos = 8;
  while (pos + 8 <= b.length && out.length < 512) {
    const len = u32be(b, pos);
    const dataEnd = Math.min(b.length, pos + 8 + len);
    const end = Math.min(b.length, dataEnd + 4);
    out.push({ at: pos, dataStart: pos + 8, dataEnd, end, len: { at: pos, size: 4, big: true, bias: 0 }, type: { at: pos + 4, size: 4 }, name: ascii(b, pos + 4, 4) });
    if (end <= pos) break;
    pos = end;
  }
  return out;
}

/** Recomputes every complete chunk's CRC, so that payload edits reach the decoder's later stages. */
function fixCrcs(b: Uint8Array): Uint8Array {
  const x = b.slice();
  for (const s of pngStructs(x)) {
    if (s.end - s.dataEnd !== 4) continue;
    const crc = crc32(x.subarray(s.at + 4, s.dataEnd));
    new DataView(x.buffer).setUint32(s.dataEnd, crc);
  }
  return x;
}

/** The file with its IDAT chunks replaced by `idats` (at the first IDAT's place). */
function replaceIdats(b: Uint8Array, idats: Uint8Array[]): Uint8Array {
  const list = pngStructs(b);
  const first = list.findIndex((s) => s.name === 'IDAT');
  if (first < 0) return b;
  const parts: Uint8Array[] = [b.subarray(0, list[first]!.at)];
  list.forEach((s, i) => {
    if (i === first) parts.push(...idats.map((d) => pngChunk('IDAT', d)));
    else if (i > first && s.name !== 'IDAT') parts.push(b.subarray(s.at, s.end));
  });
  return concat(...parts);
}

function zlibData(b: Uint8Array): Uint8Array | null {
  const idat = concat(...pngStructs(b).filter((s) => s.name === 'IDAT').map((s) => b.subarray(s.dataStart, s.dataEnd)));
  try {
    return new Uint8Array(inflateSync(idat, { finishFlush: zc.Z_SYNC_FLUSH }));
  } catch {
    return null;
  }
}

const pngExtra: fc.Arbitrary<Op> = fc.oneof(
  // IDAT split at a byte, or into n pieces.
  fc.record({ pieces: fc.integer({ min: 2, max: 40 }), zero: fc.boolean() }).map(({ pieces, zero }) => ({
    what: `IDAT: split into ${pieces}${zero ? ' with empty IDATs between' : ''}`,
    apply: (b: Uint8Array) => {
      const data = concat(...pngStructs(b).filter((s) => s.name === 'IDAT').map((s) => b.subarray(s.dataStart, s.dataEnd)));
      const out: Uint8Array[] = [];
      const step = Math.max(1, Math.ceil(data.length / pieces));
      for (let i = 0; i < data.length; i += step) {
        out.push(data.subarray(i, i + step));
        if (zero) out.push(new Uint8Array(0));
      }
      return replaceIdats(b, out.length ? out : [data]);
    },
  })),
  // The image data itself: edit the inflated scanlines (filter bytes, pixels, length), recompress.
  fc.record({
    edit: fc.constantFrom('filter', 'byte', 'cut', 'extend', 'none'),
    p: fc.nat(),
    v: fc.integer({ min: 0, max: 255 }),
    level: fc.integer({ min: 0, max: 9 }),
    strategy: fc.constantFrom(zc.Z_DEFAULT_STRATEGY, zc.Z_FIXED, zc.Z_HUFFMAN_ONLY, zc.Z_RLE),
    windowBits: fc.integer({ min: 9, max: 15 }),
  }).map(({ edit, p, v, level, strategy, windowBits }) => ({
    what: `zlib: ${edit} ${edit === 'none' ? '' : `at ${p} (${v}) `}recompressed level ${level} strategy ${strategy} window ${windowBits}`,
    apply: (b: Uint8Array) => {
      let raw = zlibData(b);
      if (!raw) return b;
      if (raw.length) {
        if (edit === 'filter') {
          const ihdr = pngStructs(b).find((s) => s.name === 'IHDR');
          const w = ihdr ? u32be(b, ihdr.dataStart) : 1;
          const bpp = ihdr ? Math.max(1, Math.ceil((([1, 0, 3, 1, 2, 0, 4][b[ihdr.dataStart + 9]!] ?? 1) * (b[ihdr.dataStart + 8]! || 8) * w) / 8)) : 1;
          const row = (p % Math.max(1, Math.floor(raw.length / (bpp + 1)))) * (bpp + 1);
          raw = raw.slice();
          if (row < raw.length) raw[row] = v % 8;
        } else if (edit === 'byte') {
          raw = raw.slice();
          raw[p % raw.length] = v;
        } else if (edit === 'cut') raw = raw.subarray(0, p % raw.length);
        else if (edit === 'extend') raw = concat(raw, new Uint8Array((p % 4096) + 1).fill(v));
      }
      return replaceIdats(b, [new Uint8Array(deflateSync(raw, { level, strategy, windowBits }))]);
    },
  })),
);

const PNG_TYPES = ['IHDR', 'PLTE', 'IDAT', 'IEND', 'tRNS', 'eXIf', 'tEXt', 'zTXt', 'iCCP', 'gAMA', 'sBIT', 'acTL', 'fdAT', 'iDAT', 'IDAt', 'ihdr', 'aaaa', '\0\0\0\0'];

export const PNG: FormatOps = { parse: pngStructs, types: PNG_TYPES, extra: pngExtra, finish: (b, fix) => (fix ? fixCrcs(b) : b) };

// ---- GIF --------------------------------------------------------------------------------------

export function gifStructs(b: Uint8Array): Struct[] {
  const out: Struct[] = [];
  if (b.length < 13) return out;
  out.push({ at: 6, dataStart: 6, dataEnd: 13, end: 13, name: 'screen' });
  let pos = 13;
  const table = (flags: number) => {
    if (!(flags & 0x80)) return;
    const n = 3 << ((flags & 7) + 1);
    out.push({ at: pos, dataStart: pos, dataEnd: Math.min(b.length, pos + n), end: Math.min(b.length, pos + n), name: 'palette' });
    pos += n;
  };
  const subBlocks = (name: string) => {
    while (pos < b.length && out.length < 512) {
      const n = b[pos]!;
      const end = Math.min(b.length, pos + 1 + n);
      out.push({ at: pos, dataStart: pos + 1, dataEnd: end, end, len: { at: pos, size: 1, big: false, bias: 0 }, name });
      pos = end;
      if (n === 0) return;
    }
  };
  table(b[10]!);
  while (pos < b.length && out.length < 512) {
    const s = b[pos]!;
    if (s === 0x21) {
      out.push({ at: pos, dataStart: pos + 1, dataEnd: Math.min(b.length, pos + 2), end: Math.min(b.length, pos + 2), type: { at: pos + 1, size: 1 }, name: 'extension' });
      pos += 2;
      subBlocks('ext-block');
    } else if (s === 0x2c) {
      const end = Math.min(b.length, pos + 10);
      out.push({ at: pos, dataStart: pos + 1, dataEnd: end, end, type: { at: pos, size: 1 }, name: 'descriptor' });
      const flags = b[pos + 9] ?? 0;
      pos = end;
      table(flags);
      if (pos < b.length) out.push({ at: pos, dataStart: pos, dataEnd: pos + 1, end: pos + 1, name: 'lzw-size' });
      pos++;
      subBlocks('image-block');
    } else {
      out.push({ at: pos, dataStart: pos, dataEnd: pos + 1, end: pos + 1, type: { at: pos, size: 1 }, name: s === 0x3b ? 'trailer' : 'junk' });
      pos++;
      if (s === 0x3b) break;
    }
  }
  return out;
}

const gifExtra: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ i: fc.nat(), v: fc.oneof(fc.integer({ min: 0, max: 15 }), fc.constantFrom(255, 128, 32)) }).map(({ i, v }) => ({
    what: `LZW minimum code size #${i} to ${v}`,
    apply: (b: Uint8Array) => {
      const list = gifStructs(b).filter((s) => s.name === 'lzw-size');
      const s = list[i % Math.max(1, list.length)];
      if (!s) return b;
      const x = b.slice();
      x[s.at] = v;
      return x;
    },
  })),
  fc.record({ i: fc.nat(), v: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 1, 255)) }).map(({ i, v }) => ({
    what: `image sub-block #${i}: length to ${v}`,
    apply: (b: Uint8Array) => {
      const list = gifStructs(b).filter((s) => s.name === 'image-block');
      const s = list[i % Math.max(1, list.length)];
      if (!s) return b;
      const x = b.slice();
      x[s.at] = v;
      return x;
    },
  })),
  fc.record({ field: fc.nat({ max: 3 }), v: fc.constantFrom(0, 1, 2, 255, 256, 4000, 65535, 10000) }).map(({ field, v }) => ({
    what: `image descriptor: ${['left', 'top', 'width', 'height'][field]} to ${v}`,
    apply: (b: Uint8Array) => {
      const s = gifStructs(b).find((t) => t.name === 'descriptor');
      if (!s || s.dataStart + 2 * field + 1 >= b.length) return b;
      const x = b.slice();
      x[s.dataStart + 2 * field] = v & 0xff;
      x[s.dataStart + 2 * field + 1] = v >> 8;
      return x;
    },
  })),
);

export const GIF: FormatOps = { parse: gifStructs, types: [0x21, 0x2c, 0x3b, 0xf9, 0xfe, 0xff, 0x01, 0x00], extra: gifExtra };

// ---- RIFF (WebP) ------------------------------------------------------------------------------

export function riffStructs(b: Uint8Array): Struct[] {
  const out: Struct[] = [];
  if (b.length < 12) return out;
  out.push({ at: 0, dataStart: 8, dataEnd: b.length, end: b.length, len: { at: 4, size: 4, big: false, bias: 0 }, type: { at: 8, size: 4 }, name: 'RIFF' });
  const walk = (from: number, to: number) => {
    let pos = from;
    while (pos + 8 <= to && out.length < 256) {
      const len = u32le(b, pos + 4);
      const dataEnd = Math.min(to, pos + 8 + len);
      const end = Math.min(to, dataEnd + (len & 1));
      const name = ascii(b, pos, 4);
      out.push({ at: pos, dataStart: pos + 8, dataEnd, end, len: { at: pos + 4, size: 4, big: false, bias: 0 }, type: { at: pos, size: 4 }, name });
      if (name === 'ANMF') walk(pos + 8 + 16, dataEnd);
      if (end <= pos) break;
      pos = end;
    }
  };
  walk(12, b.length);
  return out;
}

export const WEBP: FormatOps = {
  parse: riffStructs,
  types: ['VP8 ', 'VP8L', 'VP8X', 'ALPH', 'ANIM', 'ANMF', 'EXIF', 'ICCP', 'XMP ', 'RIFF', 'WEBP', 'JUNK'],
};

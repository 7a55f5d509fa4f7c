/**
 * The streaming PNG decoder (src/image/png.ts) against Pillow 9.4: every fixture of
 * scripts/make-png-fixtures.py decodes to exactly the bytes Pillow's convert('RGB') gives
 * (golden.json), or is refused with a 4xx where Pillow refuses it (or where we deliberately
 * do, listed in golden.json). Plus: a 12 MP PNG streams in far less than the memory budget,
 * an interlaced one of that size is a 413 that says why, bombs stop early, and mutated files
 * give only ApiErrors, quickly. The decodes run on the wasm module (zlib and the unfilter, as in
 * the Worker); our JS inflater and unfilter, its stand-in where the module is not loaded, must
 * agree with it on every file, mutated ones included.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { zlibSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors';
import { decodePng, decodePngTo, pngDecodeMemory, readPngHeader, usePngRows } from '../../src/image/png';
import { pngRowsModule, WASM_ROWS_BASE_BYTES } from '../../src/image/png/wasm-rows';
import { pngFile } from '../../models/src/png';
import type { DecodeLimits, RowSink } from '../../src/image/types';

const DIR = new URL('../fixtures/png/', import.meta.url);
const read = (file: string): Uint8Array => new Uint8Array(readFileSync(new URL(file, DIR)));

interface Golden {
  pillow: string;
  deliberate: Record<string, string>;
  files: Record<string, { width: number; height: number; sha256: string } | { error: string }>;
}
const golden = JSON.parse(readFileSync(new URL('golden.json', DIR), 'utf8')) as Golden;
const LIMITS: DecodeLimits = { maxPixels: 16_000_000, maxMemoryMB: 32 };
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * Full GCs, and time for V8 to release the freed ArrayBuffers (it sweeps them concurrently),
 * so that the memory measured before a decode holds no garbage to be freed during it.
 */
setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    fullGc();
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
}

/** A sink that collects, checking the RowSink contract: whole rows, in order, each once. */
function collector(width: number, height: number): RowSink & { data: Uint8Array; rows: number } {
  const data = new Uint8Array(width * height * 3);
  const sink = {
    data,
    rows: 0,
    write(rows: Uint8Array, y0: number, count: number) {
      expect(y0).toBe(sink.rows);
      expect(count).toBeGreaterThan(0);
      expect(rows.length).toBeGreaterThanOrEqual(count * width * 3);
      data.set(rows.subarray(0, count * width * 3), y0 * width * 3);
      sink.rows += count;
    },
  };
  return sink;
}

/** The ApiError `fn` throws; fails the test when it throws anything else or nothing. */
function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw new Error(`expected an ApiError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected an ApiError, got no error');
}

// ---- generated images ---------------------------------------------------------------------------

const png = (width: number, height: number, bitDepth: number, colorType: number, idat: Uint8Array, interlace = 0) =>
  pngFile(width, height, idat, { bitDepth, colorType, interlaced: interlace === 1 });

/**
 * Photo-like 8-bit RGB (smooth gradients plus noise), filtered with Paeth, Sub, Up and Average
 * in turn: the filtered scanlines of a `width` x `height` image, and its pixels.
 */
function photoLike(width: number, height: number): { raw: Uint8Array; rgb: Uint8Array } {
  const stride = width * 3;
  const rgb = new Uint8Array(stride * height);
  let seed = 12345;
  for (let y = 0, o = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const n = (seed >>> 28) - 8;
      rgb[o++] = ((x * 255) / width + n) & 0xff;
      rgb[o++] = ((y * 255) / height + n) & 0xff;
      rgb[o++] = (((x + y) * 128) / (width + height) + 64 + n) & 0xff;
    }
  }
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const f = [4, 1, 2, 3][y % 4]!;
    const line = y * (stride + 1);
    raw[line] = f;
    for (let i = 0; i < stride; i++) {
      const x = rgb[y * stride + i]!;
      const a = i >= 3 ? rgb[y * stride + i - 3]! : 0;
      const b = y > 0 ? rgb[(y - 1) * stride + i]! : 0;
      const c = i >= 3 && y > 0 ? rgb[(y - 1) * stride + i - 3]! : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      raw[line + 1 + i] = (x - pred) & 0xff;
    }
  }
  return { raw, rgb };
}

// ------------------------------------------------------------------------------------------------

describe('PNG decoding matches Pillow 9.4 byte for byte', () => {
  const entries = Object.entries(golden.files);

  it('covers every colour type and depth, Adam7, and Pillow 9.4 made the goldens', () => {
    expect(golden.pillow).toBe('9.4.0');
    for (const t of ['ct0-d1', 'ct0-d2', 'ct0-d4', 'ct0-d8', 'ct0-d16', 'ct4-d8', 'ct4-d16', 'ct2-d8', 'ct2-d16', 'ct6-d8', 'ct6-d16', 'ct3-d1', 'ct3-d2', 'ct3-d4', 'ct3-d8']) {
      expect(golden.files[`${t}.png`]).toHaveProperty('sha256');
      expect(golden.files[`${t}-adam7.png`]).toHaveProperty('sha256');
    }
    for (let f = 0; f < 5; f++) expect(golden.files[`filter${f}-ct2-d8.png`]).toHaveProperty('sha256');
    expect(entries.length).toBeGreaterThan(200);
  });

  const accepted = entries.filter(([name, r]) => 'sha256' in r && !(name in golden.deliberate));
  it.each(accepted)('%s', (name, ref) => {
    if (!('sha256' in ref)) throw new Error('unreachable');
    const bytes = read(name);
    const header = readPngHeader(bytes);
    const sink = collector(header.width, header.height);
    expect(decodePngTo(bytes, header, sink, LIMITS)).toEqual({ width: ref.width, height: ref.height });
    expect(sink.rows).toBe(header.height);
    expect(sha256(sink.data)).toBe(ref.sha256);
    // The collecting form gives the same bytes.
    expect(sha256(decodePng(bytes, header, LIMITS).data)).toBe(ref.sha256);
  });

  const refused = entries.filter(([name, r]) => 'error' in r || name in golden.deliberate);
  it.each(refused)('refuses %s with a 422 (Pillow refuses it, or golden.json says why we do)', (name) => {
    const bytes = read(name);
    const err = apiError(() => decodePngTo(bytes, readPngHeader(bytes), collector(1, 1 << 16), LIMITS));
    expect(err.status).toBe(422);
    expect(err.message.length).toBeLessThan(120);
  });

  it('16-bit grayscale is clipped to 255 (Pillow 9.4 opens it as mode "I")', () => {
    const bytes = read('ct0-d16-1x13.png');
    const rgb = decodePng(bytes, readPngHeader(bytes), LIMITS).data;
    // gray16_values puts ~half the samples under 256; the rest are white.
    expect(rgb.filter((v) => v === 255).length).toBeGreaterThan(0);
    expect(rgb.filter((v) => v < 255).length).toBeGreaterThan(0);
  });

  it('palette indices past PLTE are the gray ramp, as in Pillow', () => {
    const bytes = read('pal8-no-plte.png');
    const rgb = decodePng(bytes, readPngHeader(bytes), LIMITS).data;
    for (let i = 0; i < rgb.length; i += 3) expect([rgb[i + 1], rgb[i + 2]]).toEqual([rgb[i], rgb[i]]);
  });
});

describe('decoding generated images gives their pixels', () => {
  it('random sizes, RGB, both interlacings', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const width = 1 + ((seed * 37) % 61);
      const height = 1 + ((seed * 53) % 29);
      const { raw, rgb } = photoLike(width, height);
      const bytes = png(width, height, 8, 2, zlibSync(raw, { level: (seed % 9) as 1 }));
      expect(decodePng(bytes, readPngHeader(bytes), LIMITS).data).toEqual(rgb);
    }
  });
});

describe('memory', () => {
  it('streams a 4032x3024 RGB PNG in a few hundred KB, far under the 32 MB budget', async () => {
    const width = 4032;
    const height = 3024;
    const { raw } = photoLike(width, height);
    const bytes = png(width, height, 8, 2, zlibSync(raw, { level: 1 }));
    const header = readPngHeader(bytes);
    const accounted = pngDecodeMemory(header);
    expect(accounted).toBeLessThan(1024 * 1024);

    await settle(); // the generator's 36 MB of pixels are garbage by now
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    let rows = 0;
    let checksum = 0;
    const sink: RowSink = {
      write(r, _y0, count) {
        rows += count;
        checksum = (checksum + r[0]! + r[count * width * 3 - 1]!) | 0;
        if (rows % 60 < count) peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
      },
    };
    expect(decodePngTo(bytes, header, sink, LIMITS)).toEqual({ width, height });
    expect(rows).toBe(height);
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    console.log(`12 MP PNG: accounted ${(accounted / 1024).toFixed(0)} KB, measured arrayBuffers growth ${(peak / 1024).toFixed(0)} KB`);
    expect(peak).toBeLessThan(4 * 1024 * 1024);
  });

  it("the isolate's one wasm module lets go of each image's bytes, decoded, refused or stopped by the sink", async () => {
    // The module instance outlives every decode: holding a view of an upload kept the whole
    // upload alive until the next PNG (14.9 MiB in a heap snapshot mid-burst).
    const rows = pngRowsModule()!;
    const { raw } = photoLike(300, 200);
    const good = png(300, 200, 8, 2, zlibSync(raw, { level: 1 }));
    decodePng(good, readPngHeader(good), LIMITS);
    expect(rows.holdsInput).toBe(false);
    const cut = good.slice(0, good.length - 2000);
    expect(apiError(() => decodePng(cut, readPngHeader(cut), LIMITS)).status).toBe(422);
    expect(rows.holdsInput).toBe(false);
    const stop = new Error('sink stops');
    expect(() => decodePngTo(good, readPngHeader(good), { write: () => { throw stop; } }, LIMITS)).toThrow(stop);
    expect(rows.holdsInput).toBe(false);
    // And the bytes of a decoded image are garbage once the caller drops them.
    const collected = await (async () => {
      let bytes: Uint8Array | null = png(300, 200, 8, 2, zlibSync(raw, { level: 1 }));
      const ref = new WeakRef(bytes);
      decodePng(bytes, readPngHeader(bytes), LIMITS);
      bytes = null;
      await settle();
      return ref.deref() === undefined;
    })();
    expect(collected).toBe(true);
  });

  it('an interlaced 4032x3024 PNG is a 413 that says why', () => {
    // Refused from the header: the image data is never looked at.
    const bytes = png(4032, 3024, 8, 2, zlibSync(new Uint8Array(100)), 1);
    const header = readPngHeader(bytes);
    expect(pngDecodeMemory(header)).toBeGreaterThan(4032 * 3024 * 3);
    const err = apiError(() => decodePngTo(bytes, header, collector(1, 1), LIMITS));
    expect(err.status).toBe(413);
    expect(err.message).toMatch(/interlaced PNG .*must be held whole.*about 36 MB.*exceeds the decode memory budget of 32 MB/);
    // Within a budget that holds it, the same header is decodable (it then fails on its data).
    expect(apiError(() => decodePngTo(bytes, header, collector(1, 1), { ...LIMITS, maxMemoryMB: 64 })).status).toBe(422);
  });

  it('a very wide non-interlaced PNG is refused when even its scanlines exceed the budget', () => {
    const bytes = png(2_000_000, 1, 16, 6, zlibSync(new Uint8Array(10)));
    const err = apiError(() => decodePngTo(bytes, readPngHeader(bytes), collector(1, 1), LIMITS));
    expect(err.status).toBe(413);
    expect(err.message).toMatch(/2000000x1 needs about \d+ MB.* 32 MB/);
  });

  it('decompression bombs are refused fast, without inflating them', async () => {
    const small = png(16, 16, 8, 0, zlibSync(new Uint8Array(2 * 1024 * 1024)));
    expect(small.length).toBeLessThan(4096);
    expect(apiError(() => decodePng(small, readPngHeader(small), LIMITS)).message).toMatch(/more image data/);

    const bomb = png(100, 100, 8, 2, zlibSync(new Uint8Array(256 * 1024 * 1024), { level: 9 })); // 256 MB of zeros, ~250 KB
    await settle();
    const base = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const err = apiError(() => decodePngTo(bomb, readPngHeader(bomb), collector(100, 100), LIMITS));
    const ms = performance.now() - t0;
    expect(err.status).toBe(422);
    expect(ms).toBeLessThan(200);
    expect(process.memoryUsage().arrayBuffers - base).toBeLessThan(2 * 1024 * 1024);
  });
});

/** Offsets of every chunk's length field. */
function chunkOffsets(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let pos = 8; pos + 8 <= bytes.length; ) {
    out.push(pos);
    const len = ((bytes[pos]! << 24) | (bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!) >>> 0;
    pos += 12 + len;
  }
  return out;
}

/** `rounds` seeded mutations of small fixtures: bit flips, truncations, chunk length edits. */
function* mutations(rounds: number, seed: number): Generator<{ round: number; input: Uint8Array }> {
  const names = Object.keys(golden.files).filter((n) => !n.startsWith('bad-') && read(n).length < 40_000);
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  for (let round = 0; round < rounds; round++) {
    const original = read(names[rand(names.length)]!);
    const bytes = original.slice();
    const kind = round % 3;
    let input = bytes;
    if (kind === 0) {
      for (let k = 1 + rand(3); k > 0; k--) {
        const i = 8 + rand(bytes.length - 8);
        bytes[i] = bytes[i]! ^ (1 << rand(8));
      }
    } else if (kind === 1) {
      input = bytes.subarray(0, rand(bytes.length));
    } else {
      const offsets = chunkOffsets(bytes);
      const at = offsets[rand(offsets.length)]!;
      const len = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
      const choices = [0, len + 1, len - 1, len + 4, 0x7fffffff, 0xffffffff, rand(1 << 20), len * 2];
      new DataView(bytes.buffer).setUint32(at, choices[rand(choices.length)]! >>> 0);
    }
    yield { round, input };
  }
}

describe('the wasm rows (zlib) and our JS inflater agree', () => {
  /** What a decode with the given inflater gives: the pixels' hash, or the error's status and message. */
  function outcome(kind: 'wasm' | 'js', input: Uint8Array): string {
    const previous = usePngRows(kind);
    try {
      const header = readPngHeader(input);
      if (header.width * header.height > LIMITS.maxPixels) return 'too many pixels';
      return sha256(decodePng(input, header, LIMITS).data);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      // The status only: the JS inflater reads up to 128 KB ahead, so where a file has two
      // faults it may meet the later one first (a bad checksum before a bad filter type), and
      // zlib words bad data its own way.
      return `refused ${err.status}`;
    } finally {
      usePngRows(previous);
    }
  }

  it('the Worker path decodes with the wasm module: it loads, and its memory is as accounted', () => {
    const rows = pngRowsModule();
    expect(rows).not.toBeNull();
    expect(rows!.memoryBytes).toBeLessThanOrEqual(WASM_ROWS_BASE_BYTES + 64 * 1024); // + rows of the fixtures so far
  });

  it('on every fixture', () => {
    const names = Object.keys(golden.files);
    expect(names.length).toBeGreaterThan(200);
    for (const name of names) expect(outcome('js', read(name)), name).toBe(outcome('wasm', read(name)));
  });

  it('on 3000 mutated files (same pixels, or the same refusal)', () => {
    const seen = { decoded: 0, refused: 0 };
    for (const { round, input } of mutations(3000, 11)) {
      const z = outcome('wasm', input);
      expect(outcome('js', input), `round ${round}`).toBe(z);
      seen[z.startsWith('refused') ? 'refused' : 'decoded']++;
    }
    expect(seen.decoded).toBeGreaterThan(100);
    expect(seen.refused).toBeGreaterThan(1000);
  });
});

describe('mutated files give ApiErrors only, quickly', () => {
  it('bit flips, truncations and chunk length edits', () => {
    const outcomes = { decoded: 0, refused: 0 };
    let slowest = 0;
    for (const { round, input } of mutations(1500, 7)) {
      const t0 = performance.now();
      try {
        const header = readPngHeader(input);
        if (header.width * header.height > LIMITS.maxPixels) continue; // index.ts refuses these (413) first
        decodePngTo(input, header, { write() {} }, LIMITS);
        outcomes.decoded++;
      } catch (err) {
        if (!(err instanceof ApiError)) throw new Error(`round ${round}: ${String(err)}`, { cause: err });
        expect(err.status === 413 || err.status === 422).toBe(true);
        outcomes.refused++;
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    expect(outcomes.decoded).toBeGreaterThan(50);
    expect(outcomes.refused).toBeGreaterThan(500);
    expect(slowest).toBeLessThan(1000);
  });
});

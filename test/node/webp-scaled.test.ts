/**
 * wasm/webp: our libwebp 1.2.4 build (row streaming, libwebp's rescaler) through its binding.
 *
 * - Full size: the same bytes as Pillow 9.4 + libwebp 1.2.4 (`convert('RGB')`, upright) on every
 *   Pillow test WebP (../shared/data/pillow-tests) and every made fixture (test/fixtures/webp),
 *   lossy included; animations through their first frame as a still file on a black canvas.
 * - Reduced: a 12 MP lossy WebP (generated here from a small photo) decoded at 1/2..1/5 with
 *   reducedDecodeOptions, then resized with the full image's geometry (resizeCropU8 with a
 *   Reduction), against the exact full decode resized: mean <= 0.5 levels, 99.9% within 8.
 * - Memory: the 12 MP decode holds the input, a ring of rows and libwebp's state.
 * - Hostile bytes: a bounded mutation loop gives rows or a WebpError, quickly; a trapped
 *   instance is replaced.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PreprocessSpec } from '../../src/models/manifest';
import { applyOrientation } from '../../src/image/orient';
import { readWebpHeader, type WebpHeader } from '../../src/image/webp/header';
import { resizeCropU8 } from '../../src/preprocess/reference';
import type { RgbImage } from '../../src/image/types';
import { reducedDecodeOptions, WebpDecoder, WebpError, type WebpDecodeOptions } from '../../wasm/webp/index';
import { sharedUrl } from '../shared-data';

const ROOT = new URL('../../', import.meta.url);
/** The committed module (wasm/webp/build.sh --check proves it is what the source gives). */
const WASM = new URL('wasm/webp/webp_dec.wasm', ROOT);
const FIXTURES = new URL('../fixtures/webp/', import.meta.url);
const CORPUS = sharedUrl('pillow-tests');
const PHOTOS = sharedUrl('photos');

type Answer = { width: number; height: number; sha256: string; lossless?: boolean };
const json = (name: string) => (JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as { files: Record<string, Answer> }).files;
const corpus = json('pillow-tests.json');
const made = json('manifest.json');
const read = (url: URL) => new Uint8Array(readFileSync(url));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let module: WebAssembly.Module;
let webp: WebpDecoder;

beforeAll(() => {
  const NodeWasmModule = WebAssembly.Module as unknown as new (bytes: Uint8Array) => WebAssembly.Module;
  module = new NodeWasmModule(readFileSync(WASM));
  webp = WebpDecoder.fromModule(module);
});

/** Decodes to one RGB image (rows checked: in order, each once, the announced width). */
function decodeAll(bytes: Uint8Array, options: WebpDecodeOptions = {}, decoder = webp): RgbImage {
  const parts: { y0: number; rows: Uint8Array }[] = [];
  let next = 0;
  const got = decoder.decode(bytes, options, (rows, y0, count) => {
    expect(y0).toBe(next);
    next += count;
    parts.push({ y0, rows: rows.slice() });
  });
  expect(next).toBe(got.height);
  const data = new Uint8Array(got.width * got.height * got.channels);
  for (const p of parts) data.set(p.rows, p.y0 * got.width * got.channels);
  return { width: got.width, height: got.height, data };
}

/** An animation's first frame as a still WebP (what src/image/webp/index.ts's firstFrameFile does). */
function firstFrameFile(bytes: Uint8Array, header: WebpHeader): Uint8Array {
  const { frame } = header;
  const chunk = (start: number, end: number) => {
    const out = new Uint8Array(end - start + ((end - start - 8) & 1));
    out.set(bytes.subarray(start, end));
    return out;
  };
  const parts: Uint8Array[] = [];
  if (frame.alphEnd > 0) {
    const vp8x = new Uint8Array(18);
    vp8x.set([0x56, 0x50, 0x38, 0x58, 10, 0, 0, 0, 0x10]);
    const w = frame.width - 1;
    const h = frame.height - 1;
    vp8x.set([w & 0xff, (w >> 8) & 0xff, w >> 16, h & 0xff, (h >> 8) & 0xff, h >> 16], 12);
    parts.push(vp8x, chunk(frame.alphStart, frame.alphEnd));
  }
  parts.push(chunk(frame.start, frame.end));
  const size = 4 + parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(8 + size);
  out.set([0x52, 0x49, 0x46, 0x46]);
  new DataView(out.buffer).setUint32(4, size, true);
  out.set([0x57, 0x45, 0x42, 0x50], 8);
  let pos = 12;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** The upright RGB image Pillow gives: first frame on a black canvas, EXIF orientation applied. */
function asPillow(bytes: Uint8Array): RgbImage {
  const header = readWebpHeader(bytes);
  const { frame } = header;
  const still = decodeAll(header.animated ? firstFrameFile(bytes, header) : bytes);
  expect([still.width, still.height]).toEqual([frame.width, frame.height]);
  const canvas = new Uint8Array(header.width * header.height * 3);
  for (let y = 0; y < frame.height; y++) {
    canvas.set(still.data.subarray(y * frame.width * 3, (y + 1) * frame.width * 3), ((frame.y + y) * header.width + frame.x) * 3);
  }
  return applyOrientation({ width: header.width, height: header.height, data: canvas }, header.orientation);
}

describe('wasm/webp: the module', () => {
  it('imports only env.webp_rows and exports the C API', () => {
    expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'webp_rows', kind: 'function' }]);
    const names = WebAssembly.Module.exports(module).map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['memory', 'webp_malloc', 'webp_free', 'webp_info', 'webp_decode_rows', 'webp_heap_limit']));
  });
});

describe('wasm/webp: full size is Pillow 9.4 + libwebp 1.2.4', () => {
  it.each(Object.entries(corpus))('Pillow test file %s: identical', (file, expected) => {
    const got = asPillow(read(new URL(file, CORPUS)));
    expect([got.width, got.height]).toEqual([expected.width, expected.height]);
    expect(sha256(got.data)).toBe(expected.sha256);
  });

  it.each(Object.entries(made))('fixture %s: identical', (file, expected) => {
    const got = asPillow(read(new URL(file, FIXTURES)));
    expect([got.width, got.height]).toEqual([expected.width, expected.height]);
    expect(sha256(got.data)).toBe(expected.sha256);
  });

  it('RGBA keeps the stored colour under alpha and adds the alpha plane', () => {
    const bytes = read(new URL('coffee-lossy-alpha.webp', FIXTURES));
    const rgb = decodeAll(bytes);
    const rgba = decodeAll(bytes, { rgba: true });
    expect(rgba.data.length).toBe(rgb.width * rgb.height * 4);
    let transparent = 0;
    for (let i = 0; i < rgb.width * rgb.height; i++) {
      expect([...rgba.data.subarray(i * 4, i * 4 + 3)]).toEqual([...rgb.data.subarray(i * 3, i * 3 + 3)]);
      if (rgba.data[i * 4 + 3] === 0) transparent++;
    }
    expect(transparent).toBeGreaterThan(0);
  });

  it('reads size and kind from the headers', () => {
    expect(webp.info(read(new URL('mid-1200x900-lossless.webp', FIXTURES)))).toEqual({ width: 1200, height: 900, alpha: false, lossless: true, animated: false });
    expect(webp.info(read(new URL('anim-lossy-full.webp', FIXTURES)))).toMatchObject({ animated: true });
  });
});

const SPEC: PreprocessSpec = { resizeShorter: 256, cropWidth: 224, cropHeight: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

function diffStats(got: Uint8Array, ref: Uint8Array): { mean: number; p999: number } {
  const diffs = Array.from(got, (v, i) => Math.abs(v - ref[i]!)).sort((a, b) => a - b);
  return { mean: diffs.reduce((a, b) => a + b, 0) / diffs.length, p999: diffs[Math.floor(0.999 * diffs.length)]! };
}

/** A 12 MP lossy WebP of odd size (neither side a multiple of 2..5), grain added so that the geometry shows. */
async function bigLossy(): Promise<Uint8Array> {
  const W = 4001;
  const H = 2999;
  const { data } = await sharp(readFileSync(new URL('chelsea.png', PHOTOS)))
    .removeAlpha()
    .resize(W, H, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  let s = 7;
  const rand = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, data[i]! + Math.round((rand() + rand() + rand() - 1.5) * 12)));
  return new Uint8Array(await sharp(data, { raw: { width: W, height: H, channels: 3 } }).webp({ quality: 85 }).toBuffer());
}

describe('wasm/webp: 12 MP lossy, reduced decodes', () => {
  let bytes: Uint8Array;
  let full: RgbImage;
  let reference: Uint8Array;

  beforeAll(async () => {
    bytes = await bigLossy();
    full = decodeAll(bytes);
    reference = resizeCropU8(full, SPEC);
  });

  it('1/2 .. 1/5 (reduced shorter side >= 2 x 256): the 224 crop within mean 0.5, 99.9% within 8 of the full decode', () => {
    const stats: string[] = [];
    for (const scale of [2, 3, 4, 5]) {
      expect(Math.ceil(Math.min(full.width, full.height) / scale)).toBeGreaterThanOrEqual(2 * SPEC.resizeShorter);
      const reduced = decodeAll(bytes, reducedDecodeOptions(full.width, full.height, scale));
      expect([reduced.width, reduced.height]).toEqual([Math.ceil(full.width / scale), Math.ceil(full.height / scale)]);
      const { mean, p999 } = diffStats(resizeCropU8(reduced, SPEC, { fullWidth: full.width, fullHeight: full.height, scale }), reference);
      stats.push(`1/${scale}: mean ${mean.toFixed(3)} p99.9 ${p999}`);
      expect(mean, `1/${scale}`).toBeLessThanOrEqual(0.5);
      expect(p999, `1/${scale}`).toBeLessThanOrEqual(8);
    }
    if (process.env.WEBP_STATS) console.log(stats.join('\n'));
  });

  it('the instrument catches the wrong geometry: the whole image rescaled to ceil(size / scale)', () => {
    // libwebp's rescaler maps all 4001 columns onto 1001, so pixel j covers 3.997 columns, not 4:
    // the drift reaches most of a reduced pixel at the far side of the crop.
    const scale = 4;
    const plain = decodeAll(bytes, { scaleTo: { width: Math.ceil(full.width / scale), height: Math.ceil(full.height / scale) } });
    const { mean } = diffStats(resizeCropU8(plain, SPEC, { fullWidth: full.width, fullHeight: full.height, scale }), reference);
    expect(mean).toBeGreaterThan(0.5);
  });

  it('memory: the input, a ring of rows and libwebp state; rows are views, never a copy of the image', () => {
    const fresh = WebpDecoder.fromModule(module);
    const before = process.memoryUsage().arrayBuffers;
    let sum = 0;
    let sameBuffer = true;
    let lastBuffer: ArrayBufferLike | null = null;
    const got = fresh.decode(bytes, { ...reducedDecodeOptions(full.width, full.height, 4), maxMemoryBytes: 16 << 20 }, (rows) => {
      if (lastBuffer && rows.buffer !== lastBuffer) sameBuffer = false;
      lastBuffer = rows.buffer;
      for (let i = 0; i < rows.length; i += 97) sum += rows[i]!;
    });
    const jsGrowth = process.memoryUsage().arrayBuffers - before;
    expect(got).toEqual({ width: 1001, height: 750, channels: 3 });
    expect(sum).toBeGreaterThan(0);
    expect(sameBuffer).toBe(true);
    // wasm: 1 MiB of static data and stack, the input, ~0.5 MiB of libwebp state and ring.
    expect(fresh.memoryBytes).toBeLessThan(bytes.length + 2.5 * 2 ** 20);
    expect(fresh.heap().peak - bytes.length).toBeLessThan(2 ** 20);
    expect(fresh.heap().inUse).toBe(0);
    // JS: the wasm memory is the only large buffer (an RGB image would be 36 MB).
    expect(jsGrowth).toBeLessThan(fresh.memoryBytes + 4 * 2 ** 20);
    // Full size streams too: only the ring is larger.
    fresh.resetPeak();
    fresh.decode(bytes, {}, () => {});
    expect(fresh.heap().peak - bytes.length).toBeLessThan(1.5 * 2 ** 20);
  });

  it('maxMemoryBytes: out of memory (code 1) instead of growing past the limit', () => {
    const fresh = WebpDecoder.fromModule(module);
    let error: unknown;
    try {
      fresh.decode(bytes, { maxMemoryBytes: bytes.length }, () => {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(WebpError);
    expect((error as WebpError).code).toBe(1);
    expect(fresh.memoryBytes).toBeLessThanOrEqual(bytes.length);
    expect(fresh.heap().inUse).toBe(0);
  });
});

describe('wasm/webp: errors', () => {
  const hopper = () => read(new URL('hopper.webp', CORPUS));

  it('short errors for bad calls and bad files; every allocation freed', () => {
    const bad = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(WebpError);
        return (err as WebpError).message;
      }
      throw new Error('no error');
    };
    expect(bad(() => webp.decode(new Uint8Array(0), {}, () => {}))).toBe('webp: empty input');
    expect(bad(() => webp.decode(hopper(), { scaleTo: { width: 256, height: 64 } }, () => {}))).toBe('webp: 256x64 is not a downscale of 128x128');
    expect(bad(() => webp.decode(hopper(), { crop: { width: 200, height: 10 } }, () => {}))).toBe('webp: crop 200x10 is outside the 128x128 image');
    expect(bad(() => webp.decode(hopper().slice(0, 200), {}, () => {}))).toMatch(/^webp: (truncated|corrupt bitstream)$/);
    expect(bad(() => webp.decode(new TextEncoder().encode('RIFF\x10\x00\x00\x00WEBPnope'), {}, () => {}))).toMatch(/^webp: /);
    expect(webp.heap().inUse).toBe(0);
  });

  it('an error thrown by the row callback stops the decode and comes out as it is', () => {
    const mine = new Error('sink full');
    expect(() =>
      webp.decode(read(new URL('mid-1200x900-lossless.webp', FIXTURES)), {}, () => {
        throw mine;
      }),
    ).toThrow(mine);
    expect(() =>
      webp.decode(hopper(), {}, (_rows, y0) => {
        if (y0 > 0) throw mine;
      }),
    ).toThrow(mine);
    expect(webp.heap().inUse).toBe(0);
    expect(sha256(asPillow(hopper()).data)).toBe(corpus['hopper.webp']!.sha256);
  });

  it('a trap drops the instance: the next call gets a fresh one', () => {
    const d = WebpDecoder.fromModule(module);
    const inner = (d as unknown as { e: { webp_decode_rows: () => number } }).e;
    inner.webp_decode_rows = () => {
      throw new WebAssembly.RuntimeError('unreachable');
    };
    expect(() => d.decode(hopper(), {}, () => {})).toThrow(/^webp: decoder trapped/);
    expect(sha256(decodeAll(hopper(), {}, d).data)).toBe(corpus['hopper.webp']!.sha256);
  });
});

describe('wasm/webp: bounded mutation test', () => {
  function rng(seed: number): (n: number) => number {
    let s = seed >>> 0 || 1;
    return (n) => {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      return s % n;
    };
  }

  function mutate(src: Uint8Array, r: (n: number) => number): Uint8Array {
    let bytes = src.slice();
    switch (r(5)) {
      case 0:
        for (let k = 0; k <= r(4); k++) bytes[r(bytes.length)]! ^= 1 << r(8);
        break;
      case 1:
        bytes = bytes.slice(0, 1 + r(bytes.length));
        break;
      case 2: {
        const at = [4, 16, 30 + r(8), r(Math.min(64, bytes.length))][r(4)]!;
        if (at + 4 <= bytes.length) new DataView(bytes.buffer).setUint32(at, [0, 1, 0xffffffff, 0x7fffffff, r(1 << 20)][r(5)]!, true);
        break;
      }
      case 3:
        // the bitstream: a run of garbage somewhere past the headers
        for (let k = 30 + r(Math.max(1, bytes.length - 30)), n = r(64); n > 0 && k < bytes.length; n--, k++) bytes[k] = r(256);
        break;
      default:
        bytes[12 + r(Math.min(40, bytes.length - 12))] = r(256);
    }
    return bytes;
  }

  it('rows or a WebpError for 600 edited files, each quickly; the instance survives', () => {
    const sources = [
      ...Object.keys(corpus).filter((f) => f !== 'iss634.webp').map((f) => read(new URL(f, CORPUS))),
      ...Object.keys(made).filter((f) => !f.startsWith('big-')).map((f) => read(new URL(f, FIXTURES))),
    ].map((b) => {
      const h = readWebpHeader(b);
      return h.animated ? firstFrameFile(b, h) : b;
    });
    const r = rng(0xdec0de);
    const d = WebpDecoder.fromModule(module);
    let decoded = 0;
    let traps = 0;
    let slowest = 0;
    for (let i = 0; i < 600; i++) {
      const bytes = mutate(sources[r(sources.length)]!, r);
      const scaled = r(3) === 0;
      const t0 = performance.now();
      try {
        const info = d.info(bytes);
        const options: WebpDecodeOptions = {
          maxMemoryBytes: 64 << 20,
          rgba: r(2) === 0,
          ...(scaled ? reducedDecodeOptions(info.width, info.height, 1 + r(3)) : {}),
        };
        let rows = 0;
        const got = d.decode(bytes, options, (view, y0, count) => {
          expect(y0).toBe(rows);
          rows += count;
          expect(view.length).toBe(count * got0(options, info));
        });
        expect(rows).toBe(got.height);
        decoded++;
      } catch (err) {
        if (!(err instanceof WebpError)) throw err;
        if (err.message.includes('trapped')) traps++;
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    expect(traps).toBe(0);
    expect(decoded).toBeGreaterThan(60);
    expect(slowest).toBeLessThan(2000);
    expect(d.heap().inUse).toBe(0);
    expect(sha256(decodeAll(hopperBytes(), {}, d).data)).toBe(corpus['hopper.webp']!.sha256);
  });

  /** Bytes per delivered row for these options and this header. */
  function got0(options: WebpDecodeOptions, info: { width: number }): number {
    const w = options.scaleTo?.width ?? options.crop?.width ?? info.width;
    return (w + (options.pad?.right ?? 0)) * (options.rgba ? 4 : 3);
  }
  const hopperBytes = () => read(new URL('hopper.webp', CORPUS));
});

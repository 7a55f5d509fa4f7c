/**
 * src/image/webp against Pillow 9.4 + libwebp 1.2.4 (the reference): Pillow's own test WebPs
 * (../shared/data/pillow-tests, read in place) and re-encodings of the shared photos made with
 * cwebp by scripts/make-gif-webp-fixtures.py (lossy, lossless, alpha, EXIF, animations with an
 * offset first frame, a 12 MP image for the memory budget). Then a bounded mutation test of the
 * header reader and the decoder: an image or a 413/422 ApiError, quickly, nothing else.
 *
 * In Node the .wasm import of src/image/webp/index.ts cannot load (it is wrangler's CompiledWasm
 * rule), so the test compiles the package's .wasm file and mocks the import with it; the real
 * import path is exercised inside workerd by test/worker/webp.test.ts.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../src/errors';
import { applyOrientation } from '../../src/image/orient';
import { decodeWebp, readWebpHeader, webpDecodeMemory } from '../../src/image/webp';
import type { DecodeLimits, RgbImage } from '../../src/image/types';

vi.mock('@jsquash/webp/codec/dec/webp_dec.wasm', async () => {
  const require = createRequire(import.meta.url);
  const path = require.resolve('@jsquash/webp/codec/dec/webp_dec.wasm');
  // Node's WebAssembly.Module compiles from bytes (the workers types only know the precompiled kind).
  const NodeWasmModule = WebAssembly.Module as unknown as new (bytes: Uint8Array) => WebAssembly.Module;
  return { default: new NodeWasmModule(readFileSync(path)) };
});

const FIXTURES = new URL('../fixtures/webp/', import.meta.url);
const CORPUS = new URL('../../../shared/data/pillow-tests/', import.meta.url);
const LIMITS: DecodeLimits = { maxPixels: 16_000_000, maxMemoryMB: 32 };

type Answer = ({ width: number; height: number; sha256: string } | { error: string }) & { lossless?: boolean; rgb?: string };
const json = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as T;
const corpus = json<{ files: Record<string, Answer> }>('pillow-tests.json').files;
const made = json<{ files: Record<string, Answer> }>('manifest.json').files;
const readCorpus = (name: string) => new Uint8Array(readFileSync(new URL(name, CORPUS)));
const readFixture = (name: string) => new Uint8Array(readFileSync(new URL(name, FIXTURES)));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Our decode, turned upright as src/image/index.ts does; or the ApiError. */
async function ours(bytes: Uint8Array, limits = LIMITS): Promise<RgbImage | ApiError> {
  try {
    const header = readWebpHeader(bytes);
    return applyOrientation(await decodeWebp(bytes, header, limits), header.orientation);
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw new Error(`not an ApiError: ${String(err)}`, { cause: err });
  }
}

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('WebP: Pillow test corpus', () => {
  it('has the corpus beside the repository, and the answers for all of it', () => {
    expect(existsSync(CORPUS)).toBe(true);
    expect(Object.keys(corpus).sort()).toEqual(readdirSync(CORPUS).filter((f) => f.endsWith('.webp')).sort());
  });

  // All 14 are identical to Pillow's bytes, lossy ones included (same libwebp decoding paths).
  it.each(Object.entries(corpus))('%s: identical to Pillow', async (file, expected) => {
    const got = await ours(readCorpus(file));
    if (!('sha256' in expected)) throw new Error(`Pillow refuses ${file}?`);
    if (got instanceof ApiError) throw got;
    expect([got.width, got.height]).toEqual([expected.width, expected.height]);
    expect(sha256(got.data)).toBe(expected.sha256);
  });

  it('reads the header facts from the RIFF chunks', () => {
    expect(readWebpHeader(readCorpus('hopper.webp'))).toMatchObject({ format: 'webp', width: 128, height: 128, orientation: 1, lossless: false, alpha: false, animated: false });
    for (let o = 2; o <= 8; o++) expect(readWebpHeader(readCorpus(`hopper_orientation_${o}.webp`)).orientation).toBe(o);
    expect(readWebpHeader(readCorpus('transparent.webp'))).toMatchObject({ lossless: false, alpha: true, animated: false });
    expect(readWebpHeader(readCorpus('iss634.webp'))).toMatchObject({ width: 245, height: 245, lossless: true, animated: true });
  });
});

describe('WebP: cwebp re-encodings of the photos', () => {
  it.each(Object.entries(made).filter(([, a]) => 'sha256' in a && a.width * a.height < 1_000_000))(
    '%s as Pillow decodes it',
    async (file, expected) => {
      if (!('sha256' in expected)) return;
      const got = await ours(readFixture(file));
      if (got instanceof ApiError) throw got;
      expect([got.width, got.height]).toEqual([expected.width, expected.height]);
      if (expected.lossless) {
        expect(sha256(got.data)).toBe(expected.sha256); // lossless: the same bytes
      } else {
        // Lossy: within 2 levels of Pillow's RGB (libwebp versions differ in their rounding).
        expect(expected.rgb).toBeDefined();
        expect(maxDiff(got.data, readFixture(expected.rgb!))).toBeLessThanOrEqual(2);
      }
    },
  );

  it('matches Pillow exactly on every made file it decodes (lossy included)', async () => {
    let exact = 0;
    const small = Object.entries(made).filter(([, a]) => 'sha256' in a && a.width * a.height < 1_000_000);
    for (const [file, expected] of small) {
      const got = (await ours(readFixture(file))) as RgbImage;
      if ('sha256' in expected && sha256(got.data) === expected.sha256) exact++;
    }
    expect(exact).toBe(small.length);
  });

  it('reads EXIF orientation only when VP8X announces an EXIF chunk (as Pillow)', () => {
    expect(readWebpHeader(readFixture('chelsea-lossy-exif6.webp')).orientation).toBe(6);
    expect(readWebpHeader(readFixture('chelsea-lossless-exif8.webp'))).toMatchObject({ orientation: 8, lossless: true, width: 150, height: 100 });
    expect(readWebpHeader(readFixture('chelsea-lossy-exif3-unflagged.webp')).orientation).toBe(1);
  });

  it('decodes an animation to its first frame on a black canvas', async () => {
    const bytes = readFixture('anim-lossy-alpha-offset.webp');
    const header = readWebpHeader(bytes);
    expect(header).toMatchObject({ width: 160, height: 120, animated: true, alpha: true, lossless: false });
    expect(header.frame).toMatchObject({ x: 10, y: 20, width: 120, height: 80 });
    const got = (await ours(bytes)) as RgbImage;
    expect([...got.data.subarray(0, 3)]).toEqual([0, 0, 0]);
    expect(readWebpHeader(readFixture('anim-lossless-offset.webp'))).toMatchObject({ lossless: true, animated: true });
  });

  it('drops alpha: transparent pixels keep their stored colour (cwebp -exact)', async () => {
    const got = (await ours(readFixture('coffee-lossless-alpha.webp'))) as RgbImage;
    // The fully transparent block (x 30..59, y 20..39) still holds the photo.
    const o = (25 * 120 + 40) * 3;
    expect(got.data[o]! + got.data[o + 1]! + got.data[o + 2]!).toBeGreaterThan(0);
  });
});

describe('WebP: memory budget', () => {
  it('refuses a 12 MP lossy WebP from the header: 413 saying what the decode needs', async () => {
    const bytes = readFixture('big-4032x3024-lossy.webp');
    const header = readWebpHeader(bytes);
    expect(header).toMatchObject({ width: 4032, height: 3024, lossless: false });
    const need = webpDecodeMemory(header);
    expect(need).toBeGreaterThan(4032 * 3024 * 11);
    const got = (await ours(bytes)) as ApiError;
    expect(got.status).toBe(413);
    expect(got.message).toBe(
      `decoding this 4032x3024 lossy WebP needs ${Math.ceil(need / 1048576)} MB, over the budget of 32 MB ` +
        '(the WebP decoder has no reduced-scale or row-by-row decoding)',
    );
    expect(((await ours(bytes, { maxPixels: 10_000_000, maxMemoryMB: 1024 })) as ApiError).message).toMatch(/over the limit of 10000000/);
  });

  it('decodes the same file when the budget allows it (Pillow: identical)', async () => {
    const expected = made['big-4032x3024-lossy.webp']!;
    const got = (await ours(readFixture('big-4032x3024-lossy.webp'), { maxPixels: 16_000_000, maxMemoryMB: 256 })) as RgbImage;
    expect('sha256' in expected && sha256(got.data)).toBe('sha256' in expected && expected.sha256);
  });

  it('decodes a 1200x900 lossless WebP inside the default 32 MB', async () => {
    const bytes = readFixture('mid-1200x900-lossless.webp');
    expect(webpDecodeMemory(readWebpHeader(bytes))).toBeLessThan(32 * 1048576);
    const got = (await ours(bytes)) as RgbImage;
    const expected = made['mid-1200x900-lossless.webp']!;
    expect('sha256' in expected && sha256(got.data)).toBe('sha256' in expected && expected.sha256);
  });
});

describe('WebP: malformed files', () => {
  it('says what is wrong in short 422 messages', async () => {
    const hopper = readCorpus('hopper.webp');
    const msg = async (b: Uint8Array) => ((await ours(b)) as ApiError).message;
    expect(await msg(hopper.slice(0, hopper.length - 10))).toMatch(/^corrupt WebP: truncated: the RIFF header says 3282 bytes, the file has 3272$/);
    expect(await msg(hopper.slice(0, 11))).toBe('not a WebP file');
    const badStart = hopper.slice();
    badStart[20 + 3] = 0; // VP8 start code 9d 01 2a
    expect(await msg(badStart)).toMatch(/corrupt WebP/);
    const garbage = hopper.slice();
    for (let i = 40; i < garbage.length; i++) garbage[i] = 0xa5;
    const got = await ours(garbage);
    expect(got instanceof ApiError ? got.status : 200).toBeLessThan(500);
  });
});

describe('WebP: bounded mutation test', () => {
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

  const sources = [
    ...Object.keys(corpus).filter((f) => f !== 'iss634.webp').map(readCorpus),
    ...Object.keys(made).filter((f) => !f.startsWith('big-')).map(readFixture),
  ];

  function mutate(src: Uint8Array, r: (n: number) => number): Uint8Array {
    let bytes = src.slice();
    switch (r(4)) {
      case 0:
        for (let k = 0; k <= r(4); k++) bytes[r(bytes.length)]! ^= 1 << r(8);
        break;
      case 1:
        bytes = bytes.slice(0, r(bytes.length));
        break;
      case 2: {
        // length edits: the RIFF size or a chunk size (or the bytes around them)
        const at = [4, 16, 30 + r(8), r(Math.min(64, bytes.length))][r(4)]!;
        if (at + 4 <= bytes.length) new DataView(bytes.buffer).setUint32(at, [0, 1, 0xffffffff, 0x7fffffff, r(1 << 20)][r(5)]!, true);
        break;
      }
      default:
        // header fields: VP8X flags and canvas, bitstream headers
        bytes[12 + r(Math.min(40, bytes.length - 12))] = r(256);
    }
    return bytes;
  }

  it('readWebpHeader: a header or a 422, for 20000 edited files, each quickly', () => {
    const r = rng(0x5eed);
    let slowest = 0;
    let read = 0;
    for (let i = 0; i < 20000; i++) {
      const bytes = mutate(sources[r(sources.length)]!, r);
      const t0 = performance.now();
      try {
        const h = readWebpHeader(bytes);
        read++;
        expect(h.width * h.height).toBeGreaterThan(0);
        expect(h.frame.x + h.frame.width).toBeLessThanOrEqual(h.width);
        expect(h.frame.end).toBeLessThanOrEqual(bytes.length);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        expect(err.status).toBe(422);
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    expect(read).toBeGreaterThan(2000);
    expect(slowest).toBeLessThan(100);
  });

  it('decodeWebp: an image or a 413/422 for 600 edited files, each quickly', async () => {
    const r = rng(0xdec0de);
    let slowest = 0;
    let decoded = 0;
    for (let i = 0; i < 600; i++) {
      const bytes = mutate(sources[r(sources.length)]!, r);
      const t0 = performance.now();
      const got = await ours(bytes);
      slowest = Math.max(slowest, performance.now() - t0);
      if (got instanceof ApiError) expect([413, 422]).toContain(got.status);
      else {
        decoded++;
        expect(got.data.length).toBe(got.width * got.height * 3);
      }
    }
    expect(decoded).toBeGreaterThan(60);
    expect(slowest).toBeLessThan(2000);
    // The instance still decodes after all that.
    expect(sha256(((await ours(readCorpus('hopper.webp'))) as RgbImage).data)).toBe((corpus['hopper.webp'] as { sha256: string }).sha256);
  });
});

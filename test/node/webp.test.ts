/**
 * src/image/webp (our libwebp 1.2.4 build, wasm/webp) against Pillow 9.4 + libwebp 1.2.4 (the
 * reference): Pillow's own test WebPs (../shared/data/pillow-tests, read in place) and
 * re-encodings of the shared photos made with cwebp by scripts/make-gif-webp-fixtures.py (lossy,
 * lossless, alpha, EXIF, animations with an offset first frame, a 12 MP image for the memory
 * budget). Then the memory accounting against the decoder's measured memory, Pillow's refusals
 * of corrupt alpha, and a bounded mutation test of the header reader and the decoder: an image or
 * a 413/422 ApiError, quickly, nothing else.
 *
 * In Node the .wasm import (src/image/webp/module.ts) is wrangler's CompiledWasm rule:
 * test/node/setup-wasm.ts mocks it with the compiled file; the real import path is exercised
 * inside workerd by test/worker/webp.test.ts.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors';
import { planDecode } from '../../src/image';
import { applyOrientation } from '../../src/image/orient';
import {
  decodeWebp,
  decodeWebpTo,
  readWebpHeader,
  resetWebpDecoder,
  webpChecksAlpha,
  webpDecodeMemory,
  webpDecoderHeapPeak,
  webpDecoderMemoryBytes,
  type WebpHeader,
} from '../../src/image/webp';
import type { DecodeLimits, RgbImage } from '../../src/image/types';
import { sharedUrl } from '../shared-data';

const FIXTURES = new URL('../fixtures/webp/', import.meta.url);
const CORPUS = sharedUrl('pillow-tests');
const LIMITS: DecodeLimits = { maxPixels: 16_000_000, maxMemoryMB: 32 };
const BUDGET = 32 * 2 ** 20;

type Answer = ({ width: number; height: number; sha256: string } | { error: string }) & { lossless?: boolean; rgb?: string };
const json = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as T;
const corpus = json<{ files: Record<string, Answer> }>('pillow-tests.json').files;
const made = json<{ files: Record<string, Answer> }>('manifest.json').files;
const readCorpus = (name: string) => new Uint8Array(readFileSync(new URL(name, CORPUS)));
const readFixture = (name: string) => new Uint8Array(readFileSync(new URL(name, FIXTURES)));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const shaOf = (a: Answer) => ('sha256' in a ? a.sha256 : `refused: ${a.error}`);

/** Our decode, turned upright as src/image/index.ts does; or the ApiError. */
async function ours(bytes: Uint8Array, limits = LIMITS): Promise<RgbImage | ApiError> {
  try {
    const header = readWebpHeader(bytes);
    return applyOrientation(decodeWebp(bytes, header, limits), header.orientation);
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw new Error(`not an ApiError: ${String(err)}`, { cause: err });
  }
}

/** Streams the full-size decode into a SHA-256 (the 12 MP image is never held). */
function streamedSha(bytes: Uint8Array, header: WebpHeader, limits = LIMITS): { sha: string; rows: number } {
  const hash = createHash('sha256');
  let rows = 0;
  decodeWebpTo(bytes, header, 1, { write: (view, y0, count) => (expect(y0).toBe(rows), (rows += count), hash.update(view.subarray(0, count * header.width * 3))) }, limits);
  return { sha: hash.digest('hex'), rows };
}

/** A VP8L file of the given size whose bitstream is only its header (enough for the plan). */
function losslessHeaderOnly(width: number, height: number): Uint8Array {
  const out = new Uint8Array(12 + 8 + 6);
  const v = new DataView(out.buffer);
  out.set([0x52, 0x49, 0x46, 0x46], 0);
  v.setUint32(4, out.length - 8, true);
  out.set([0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38, 0x4c], 8);
  v.setUint32(16, 6, true);
  out[20] = 0x2f;
  v.setUint32(21, ((width - 1) | ((height - 1) << 14)) >>> 0, true);
  return out;
}

describe('WebP: Pillow test corpus', () => {
  it('has the corpus beside the repository, and the answers for all of it', () => {
    expect(existsSync(CORPUS)).toBe(true);
    expect(Object.keys(corpus).sort()).toEqual(readdirSync(CORPUS).filter((f) => f.endsWith('.webp')).sort());
  });

  // All 14 are identical to Pillow's bytes, lossy ones included (the same libwebp, 1.2.4).
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
  const small = Object.entries(made).filter(([, a]) => 'sha256' in a && a.width * a.height < 1_000_000);

  it.each(small)('%s: identical to Pillow', async (file, expected) => {
    const got = await ours(readFixture(file));
    if (got instanceof ApiError) throw got;
    expect([got.width, got.height]).toEqual('sha256' in expected ? [expected.width, expected.height] : []);
    expect(sha256(got.data)).toBe(shaOf(expected));
    // Lossy ones also against the raw RGB Pillow wrote (the same bytes, so no level differs).
    if (!expected.lossless && expected.rgb) expect(Buffer.compare(got.data, readFixture(expected.rgb))).toBe(0);
  });

  it('matches Pillow exactly on every made file and every corpus file (lossy included)', async () => {
    let exact = 0;
    const all = [...small.map(([f, a]) => [readFixture(f), a] as const), ...Object.entries(corpus).map(([f, a]) => [readCorpus(f), a] as const)];
    for (const [bytes, expected] of all) {
      const got = (await ours(bytes)) as RgbImage;
      if (sha256(got.data) === shaOf(expected)) exact++;
    }
    expect(exact).toBe(all.length);
    expect(all.length).toBe(small.length + 14);
  });

  it('reads EXIF orientation only when VP8X announces an EXIF chunk (as Pillow)', () => {
    expect(readWebpHeader(readFixture('chelsea-lossy-exif6.webp')).orientation).toBe(6);
    expect(readWebpHeader(readFixture('chelsea-lossless-exif8.webp'))).toMatchObject({ orientation: 8, lossless: true, width: 150, height: 100 });
    expect(readWebpHeader(readFixture('chelsea-lossy-exif3-unflagged.webp')).orientation).toBe(1);
  });

  it('decodes an animation to its first frame on a black canvas, streamed row by row', async () => {
    const bytes = readFixture('anim-lossy-alpha-offset.webp');
    const header = readWebpHeader(bytes);
    expect(header).toMatchObject({ width: 160, height: 120, animated: true, alpha: true, lossless: false });
    expect(header.frame).toMatchObject({ x: 10, y: 20, width: 120, height: 80 });
    const got = (await ours(bytes)) as RgbImage;
    expect([...got.data.subarray(0, 3)]).toEqual([0, 0, 0]);
    // Streamed: every canvas row once, in order, zeros above, below and beside the frame.
    expect(streamedSha(bytes, header)).toEqual({ sha: shaOf(made['anim-lossy-alpha-offset.webp']!), rows: 120 });
    expect(readWebpHeader(readFixture('anim-lossless-offset.webp'))).toMatchObject({ lossless: true, animated: true });
    expect(streamedSha(readFixture('anim-lossless-offset.webp'), readWebpHeader(readFixture('anim-lossless-offset.webp'))).sha).toBe(shaOf(made['anim-lossless-offset.webp']!));
  });

  it('drops alpha: transparent pixels keep their stored colour (cwebp -exact)', async () => {
    const got = (await ours(readFixture('coffee-lossless-alpha.webp'))) as RgbImage;
    // The fully transparent block (x 30..59, y 20..39) still holds the photo.
    const o = (25 * 120 + 40) * 3;
    expect(got.data[o]! + got.data[o + 1]! + got.data[o + 2]!).toBeGreaterThan(0);
  });
});

describe('WebP: corrupt alpha, refused as Pillow refuses it', () => {
  // coffee-lossy-alpha.webp's ALPH payload starts at byte 38 (its header byte: lossless
  // compression, horizontal filter). Pillow 9.4 refuses all three edits ("failed to read next
  // frame"): it decodes RGBA, so libwebp reads the alpha. Measured on 600 random ALPH edits of
  // four files: Pillow refused 525; RGBA mode refused the same 525 and decoded the other 75 to
  // Pillow's bytes, while RGB mode (ALPH skipped) decoded all 600.
  const edits: [string, (b: Uint8Array) => void][] = [
    ['40 payload bytes set to 0xff', (b) => b.fill(0xff, 39, 79)],
    ['compression method 3 (undefined)', (b) => void (b[38] = (b[38]! & ~3) | 3)],
    ['one bit flipped', (b) => void (b[58]! ^= 0x10)],
  ];
  it.each(edits)('%s: 422', async (_what, edit) => {
    const bytes = readFixture('coffee-lossy-alpha.webp');
    edit(bytes);
    const got = await ours(bytes);
    expect(got).toBeInstanceOf(ApiError);
    expect((got as ApiError).status).toBe(422);
    expect((got as ApiError).message).toBe('corrupt WebP: bad bitstream');
  });

  it('reads the alpha only when that fits the budget; past it, the colour is decoded all the same', async () => {
    const bytes = readFixture('coffee-lossy-alpha.webp');
    const header = readWebpHeader(bytes);
    const rgb = webpDecodeMemory(header, 1, false);
    const rgba = webpDecodeMemory(header, 1, true);
    expect(rgba - rgb).toBeGreaterThan(7 * 120 * 80);
    expect(webpChecksAlpha(header, 1, BUDGET)).toBe(true);
    const tight = rgb + 120 * 80 * 3; // the collected image fits, the alpha check does not
    expect(webpChecksAlpha(header, 1, tight)).toBe(false);
    const corrupt = bytes.slice().fill(0xff, 39, 79);
    const got = (await ours(corrupt, { maxPixels: 1e6, maxMemoryMB: tight / 2 ** 20 })) as RgbImage;
    expect(sha256(got.data)).toBe(shaOf(made['coffee-lossy-alpha.webp']!));
    // A 12 MP lossy file with alpha: the check would take ~7 bytes a pixel, over 32 MB.
    const big = { ...header, width: 4032, height: 3024, frame: { ...header.frame, width: 4032, height: 3024 } };
    expect(webpChecksAlpha(big, 5, BUDGET)).toBe(false);
  });
});

describe('WebP: memory', () => {
  it('decodes a 12 MP lossy WebP streamed within the 32 MB budget, identical to Pillow', async () => {
    const bytes = readFixture('big-4032x3024-lossy.webp');
    const header = readWebpHeader(bytes);
    expect(header).toMatchObject({ width: 4032, height: 3024, lossless: false });
    const need = webpDecodeMemory(header, 1);
    expect(need).toBeLessThan(2.5 * 2 ** 20); // the file (22 KB), 1 MiB of wasm, libwebp's state (~0.5 MB) and ring (0.5 MB)
    resetWebpDecoder();
    const { sha, rows } = streamedSha(bytes, header);
    expect(rows).toBe(3024);
    expect(sha).toBe(shaOf(made['big-4032x3024-lossy.webp']!));
    expect(webpDecoderMemoryBytes()).toBeLessThanOrEqual(need);
    // Through the plan: the Worker's resize target (256) decodes it at 1/5, streamed.
    const plan = planDecode(bytes, LIMITS, { target: 256 });
    expect(plan).toMatchObject({ scale: 5, width: 807, height: 605, streams: true, path: 'webp-lossy@1/5' });
    expect(plan.reduction).toEqual({ fullWidth: 4032, fullHeight: 3024, scale: 5 });
    expect(plan.memoryBytes).toBeLessThan(2 * 2 ** 20);
    // Collected whole at full size it would be 36.6 MB: over the budget, refused before decoding.
    const whole = (await ours(bytes)) as ApiError;
    expect(whole.status).toBe(413);
    expect(whole.message).toMatch(/^decoding this 4032x3024 lossy WebP needs 3[6-9] MB, over the budget of 32 MB$/);
  });

  it('refuses a 12 MP lossless WebP: libwebp holds a lossless image whole (4 bytes a pixel)', () => {
    const bytes = losslessHeaderOnly(4032, 3024);
    const header = readWebpHeader(bytes);
    expect(header).toMatchObject({ width: 4032, height: 3024, lossless: true });
    const need = webpDecodeMemory(header, 1);
    expect(need).toBeGreaterThan(4 * 4032 * 3024);
    let err: unknown;
    try {
      planDecode(bytes, LIMITS, { target: 256 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(413);
    expect((err as ApiError).message).toBe(
      `WEBP of 4032x3024 needs ${Math.ceil((need / 2 ** 20) * 10) / 10} MB to decode (libwebp holds a lossless WebP whole: 4 bytes a pixel), over the limit of 32 MB`,
    );
    expect(() => decodeWebpTo(bytes, header, 1, { write: () => {} }, LIMITS)).toThrow(
      `decoding this 4032x3024 lossless WebP needs ${Math.ceil(need / 2 ** 20)} MB, over the budget of 32 MB (libwebp holds a lossless image whole: 4 bytes a pixel)`,
    );
  });

  it('the accounting bounds the decoder\'s measured memory on every file, in both alpha modes', () => {
    const files = [...Object.keys(made).map((f) => [f, readFixture(f)] as const), ...Object.keys(corpus).map((f) => [f, readCorpus(f)] as const)];
    const rows: string[] = [];
    for (const [file, bytes] of files) {
      const header = readWebpHeader(bytes);
      // RGBA (the alpha check, with the 32 MB budget) and, for files with ALPH, RGB: a budget
      // just too small for the check.
      const budgets = [BUDGET, ...(header.frame.alphEnd > 0 ? [webpDecodeMemory(header, 1, false) + 6 * header.width * header.height] : [])];
      for (const budget of budgets) {
        const alpha = webpChecksAlpha(header, 1, budget);
        expect(alpha, file).toBe(budget === BUDGET && header.frame.alphEnd > 0);
        const need = webpDecodeMemory(header, 1, alpha);
        resetWebpDecoder();
        const before = process.memoryUsage().arrayBuffers;
        decodeWebpTo(bytes, header, 1, { write: () => {} }, { maxPixels: 16e6, maxMemoryMB: budget / 2 ** 20 });
        // (arrayBuffers leaves out wasm memories; GC may make it go down, never up.)
        const js = Math.max(0, process.memoryUsage().arrayBuffers - before);
        const wasm = webpDecoderMemoryBytes();
        const heap = webpDecoderHeapPeak();
        rows.push(`${file} ${alpha ? 'RGBA' : 'RGB'}: wasm ${wasm}, heap peak ${heap}, js ${js}; accounted ${need}`);
        expect(wasm + js, `${file}: wasm memory + JS buffers`).toBeLessThanOrEqual(need);
        // Small files stay in the initial 1 MiB: the heap alone must fit what is accounted beyond it.
        if (!process.env.WEBP_STATS) expect(heap + js, `${file}: heap peak + JS buffers`).toBeLessThanOrEqual(need - 2 ** 20);
      }
    }
    if (process.env.WEBP_STATS) console.log(rows.join('\n'));
  });

  it('bounds the alpha check of a 1.9 MP lossy WebP whose alpha libwebp keeps at 4 bytes a pixel', async () => {
    // libwebp's encoder at its defaults (through sharp) codes this alpha so that its decoder
    // takes the 32-bit path: ~6.1 bytes a pixel in all (the accounting says 7).
    const W = 1600;
    const H = 1200;
    const rgba = new Uint8Array(W * H * 4);
    for (let i = 0; i < W * H; i++) {
      const x = i % W;
      const y = Math.floor(i / W);
      rgba.set([(x * 7) & 255, (y * 5) & 255, (x ^ y) & 255, Math.round(128 + 127 * Math.sin(x / 97) * Math.cos(y / 53))], i * 4);
    }
    const sharp = (await import('sharp')).default;
    const bytes = new Uint8Array(await sharp(rgba, { raw: { width: W, height: H, channels: 4 } }).webp({ quality: 85 }).toBuffer());
    const header = readWebpHeader(bytes);
    expect(header.frame.alphEnd).toBeGreaterThan(0);
    expect(webpChecksAlpha(header, 1, BUDGET)).toBe(true);
    const need = webpDecodeMemory(header, 1, true);
    resetWebpDecoder();
    decodeWebpTo(bytes, header, 1, { write: () => {} }, LIMITS);
    const heap = webpDecoderHeapPeak();
    console.log(`1600x1200 lossy + alpha, RGBA: heap peak ${(heap / W / H).toFixed(2)} bytes a pixel, wasm ${(webpDecoderMemoryBytes() / 2 ** 20).toFixed(1)} MiB, accounted ${(need / 2 ** 20).toFixed(1)} MiB`);
    expect(heap / W / H).toBeGreaterThan(5); // the 32-bit path indeed
    expect(webpDecoderMemoryBytes()).toBeLessThanOrEqual(need);
    expect(heap).toBeLessThanOrEqual(need - 2 ** 20);
  });

  it('decodes a 1200x900 lossless WebP inside the default 32 MB', async () => {
    const bytes = readFixture('mid-1200x900-lossless.webp');
    expect(webpDecodeMemory(readWebpHeader(bytes))).toBeLessThan(32 * 1048576);
    const got = (await ours(bytes)) as RgbImage;
    expect(sha256(got.data)).toBe(shaOf(made['mid-1200x900-lossless.webp']!));
  });

  it('libwebp running out of the budget is a clean 413, and the next decode works', () => {
    const bytes = readFixture('big-4032x3024-lossy.webp');
    const header = readWebpHeader(bytes);
    // A wrong estimate, simulated: the header check sees a 64 px wide image and lets it through
    // a 1.2 MB budget; libwebp, decoding 4032 columns, cannot live in it.
    const lying = { ...header, width: 64, frame: { ...header.frame, width: 64 } };
    resetWebpDecoder();
    let err: unknown;
    try {
      decodeWebpTo(bytes, lying, 1, { write: () => {} }, { maxPixels: 16e6, maxMemoryMB: 1.2 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(413);
    expect((err as ApiError).message).toBe('decoding this 64x3024 lossy WebP needs more than the 1.2 MB budget (libwebp ran out of memory)');
    expect(webpDecoderMemoryBytes()).toBeLessThanOrEqual(1.2 * 2 ** 20);
    expect(streamedSha(bytes, header).sha).toBe(shaOf(made['big-4032x3024-lossy.webp']!));
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

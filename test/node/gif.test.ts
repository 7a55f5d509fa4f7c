/**
 * src/image/gif.ts against Pillow 9.4 (the reference decoder), byte for byte: Pillow's own test
 * GIFs (../shared/data/pillow-tests, read in place), small GIFs made for the corners the corpus
 * lacks, and hundreds of mutants of both, with Pillow's answers recorded by
 * scripts/make-gif-webp-fixtures.py. Then bombs, limits, and a mutation fuzz that only checks
 * the contract: an image or a 413/422 ApiError, quickly, never anything else.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors';
import { decodeGif, gifDecodeMemory, readGifHeader } from '../../src/image/gif';
import { sniff, unsupportedFormatMessage } from '../../src/image/sniff';
import type { DecodeLimits, RgbImage } from '../../src/image/types';
import { sharedUrl } from '../shared-data';

const FIXTURES = new URL('../fixtures/gif/', import.meta.url);
const CORPUS = sharedUrl('pillow-tests');
const LIMITS: DecodeLimits = { maxPixels: 16_000_000, maxMemoryMB: 32 };

type Answer = { width: number; height: number; sha256: string } | { error: string } | { tooLarge: [number, number] };
const json = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as T;
const corpus = json<{ files: Record<string, Answer> }>('pillow-tests.json').files;
const crafted = json<{ files: Record<string, Answer> }>('manifest.json').files;
const mutants = json<{
  mutants: (Answer & { source: string; edits: [number, number][]; truncate?: number })[];
}>('mutants.json').mutants;

const readCorpus = (name: string) => new Uint8Array(readFileSync(new URL(name, CORPUS)));
const readFixture = (name: string) => new Uint8Array(readFileSync(new URL(name, FIXTURES)));
const source = (name: string): Uint8Array =>
  name.startsWith('pillow-tests/') ? readCorpus(name.slice('pillow-tests/'.length)) : readFixture(name.slice('gif/'.length));

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** What our decoder answers: the image, or the ApiError. Anything else thrown fails the test. */
function ours(bytes: Uint8Array, limits = LIMITS): RgbImage | ApiError {
  try {
    return decodeGif(bytes, readGifHeader(bytes), limits);
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw new Error(`not an ApiError: ${String(err)}`, { cause: err });
  }
}

/** Checks our answer against Pillow's; returns 'exact' for identical pixels, 'refused' for both refusing. */
function compare(bytes: Uint8Array, expected: Answer, label: string): 'exact' | 'refused' | 'limit' {
  const got = ours(bytes);
  if ('sha256' in expected) {
    if (expected.width * expected.height * 3 > (LIMITS.maxMemoryMB ?? 0) * 1048576 || expected.width * expected.height > LIMITS.maxPixels) {
      // Pillow decodes it; our limits refuse it first.
      expect(got, label).toBeInstanceOf(ApiError);
      expect((got as ApiError).status, label).toBe(413);
      return 'limit';
    }
    if (got instanceof ApiError) throw new Error(`${label}: Pillow decodes it, we refused: ${got.message}`);
    expect([got.width, got.height], label).toEqual([expected.width, expected.height]);
    expect(sha256(got.data), label).toBe(expected.sha256);
    return 'exact';
  }
  expect(got, `${label}: Pillow refuses it (${JSON.stringify(expected)})`).toBeInstanceOf(ApiError);
  const status = (got as ApiError).status;
  if ('tooLarge' in expected) expect(status, label).toBe(413);
  else expect([413, 422], label).toContain(status);
  return 'refused';
}

describe('GIF: Pillow test corpus', () => {
  it('has the corpus beside the repository, and the answers for all of it', () => {
    expect(existsSync(CORPUS)).toBe(true);
    const onDisk = readdirSync(CORPUS).filter((f) => f.endsWith('.gif')).sort();
    expect(Object.keys(corpus).sort()).toEqual(onDisk);
  });

  it.each(Object.entries(corpus))('%s as Pillow decodes it', (file, expected) => {
    compare(readCorpus(file), expected, file);
  });

  it('decodes every corpus file Pillow opens and refuses the two it refuses', () => {
    const counts = { exact: 0, refused: 0, limit: 0 };
    for (const [file, expected] of Object.entries(corpus)) counts[compare(readCorpus(file), expected, file)]++;
    expect(counts).toEqual({ exact: 36, refused: 2, limit: 0 });
  });

  it('refuses the decompression bomb (a first frame reaching to 65535x66601) with 413 from the header', () => {
    const bytes = readCorpus('decompression_bomb.gif');
    const header = readGifHeader(bytes);
    expect([header.screenWidth, header.screenHeight, header.width, header.height]).toEqual([32, 32, 65535, 66601]);
    const got = ours(bytes, { maxPixels: 16_000_000, maxMemoryMB: 1024 });
    expect((got as ApiError).status).toBe(413);
  });
});

describe('GIF: crafted files', () => {
  it.each(Object.entries(crafted))('%s as Pillow decodes it', (file, expected) => {
    compare(readFixture(file), expected, file);
  });

  it('enlarges the image to the first frame and fills outside it with the transparency colour', () => {
    const bytes = readFixture('frame-past-screen-transparency.gif');
    const h = readGifHeader(bytes);
    expect(h).toMatchObject({ format: 'gif', width: 14, height: 13, screenWidth: 10, screenHeight: 10, orientation: 1, transparency: 3 });
    expect([h.frameLeft, h.frameTop, h.frameWidth, h.frameHeight]).toEqual([6, 4, 8, 9]);
  });

  it('refuses bombs before allocating: a 65535x65535 screen from 41 bytes', () => {
    const bytes = readFixture('bomb-screen-65535.gif');
    const t0 = performance.now();
    const got = ours(bytes) as ApiError;
    expect(got.status).toBe(413);
    expect(got.message).toMatch(/65535x65535/);
    expect(performance.now() - t0).toBeLessThan(50);
  });

  it('refuses a stream of clear codes quickly (Pillow: truncated)', () => {
    const t0 = performance.now();
    expect((ours(readFixture('endless-clear-codes.gif')) as ApiError).status).toBe(422);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('accounts memory: 413 over maxMemoryMB, with what the decode needs', () => {
    const bytes = readCorpus('test.colors.gif'); // 807x606
    const header = readGifHeader(bytes);
    expect(gifDecodeMemory(header)).toBe(807 * 606 * 3 + 64 * 1024);
    const got = ours(bytes, { maxPixels: 16_000_000, maxMemoryMB: 1 }) as ApiError;
    expect(got.status).toBe(413);
    expect(got.message).toMatch(/needs 2 MB, over the budget of 1 MB/);
    expect((ours(bytes, { maxPixels: 400_000 }) as ApiError).status).toBe(413);
  });

  it('says what is wrong in short messages', () => {
    expect((ours(new TextEncoder().encode('GIF89a')) as ApiError).message).toMatch(/corrupt GIF: truncated/);
    expect((ours(readFixture('broken-first-code.gif')) as ApiError).message).toBe('corrupt GIF: broken LZW data');
    expect((ours(readFixture('bits13.gif')) as ApiError).message).toMatch(/code size 13/);
    expect((ours(readFixture('truncated-data.gif')) as ApiError).message).toBe('corrupt GIF: image data truncated');
    expect(() => readGifHeader(new Uint8Array([0x89, 0x50]))).toThrow(ApiError);
  });
});

describe('GIF: mutants against Pillow', () => {
  it(`gives Pillow's answer for all ${mutants.length} mutants (bit flips, set bytes, truncations)`, () => {
    const counts = { exact: 0, refused: 0, limit: 0 };
    let slowest = 0;
    const cache = new Map<string, Uint8Array>();
    for (const [i, m] of mutants.entries()) {
      let src = cache.get(m.source);
      if (!src) cache.set(m.source, (src = source(m.source)));
      const bytes = src.slice(0, m.truncate ?? src.length);
      for (const [off, val] of m.edits) if (off < bytes.length) bytes[off] = val;
      const t0 = performance.now();
      counts[compare(bytes, m, `mutant ${i} of ${m.source}`)]++;
      slowest = Math.max(slowest, performance.now() - t0);
    }
    expect(counts.exact).toBeGreaterThan(300);
    expect(counts.exact + counts.refused + counts.limit).toBe(mutants.length);
    expect(slowest).toBeLessThan(2000);
  });
});

describe('GIF: mutation fuzz (contract only)', () => {
  /** xorshift32: deterministic. */
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

  it('answers an image or a 413/422 for thousands of edited files, each quickly', () => {
    const sources = [
      ...Object.keys(corpus).map((f) => readCorpus(f)),
      ...Object.keys(crafted).map((f) => readFixture(f)),
    ].filter((b) => b.length < 40_000);
    const r = rng(0x9e3779b9);
    let slowest = 0;
    let decoded = 0;
    const runs = 3000;
    for (let i = 0; i < runs; i++) {
      const src = sources[r(sources.length)]!;
      let bytes = src.slice();
      switch (r(4)) {
        case 0: // bit flips
          for (let k = 0; k <= r(4); k++) {
            const off = r(bytes.length);
            bytes[off]! ^= 1 << r(8);
          }
          break;
        case 1: // truncation
          bytes = bytes.slice(0, r(bytes.length));
          break;
        case 2: {
          // length edits: a size field of the header or descriptor, or a sub-block length
          const off = r(Math.min(bytes.length, 64));
          bytes[off] = [0, 1, 0xff, 0x7f, 0x80][r(5)]!;
          break;
        }
        default: {
          // a block inserted or removed
          const off = r(bytes.length);
          const len = 1 + r(16);
          bytes = r(2) ? new Uint8Array([...bytes.subarray(0, off), ...bytes.subarray(off + len)]) : new Uint8Array([...bytes.subarray(0, off), ...new Uint8Array(len).fill(r(256)), ...bytes.subarray(off)]);
        }
      }
      const t0 = performance.now();
      const got = ours(bytes);
      slowest = Math.max(slowest, performance.now() - t0);
      if (got instanceof ApiError) expect([413, 422]).toContain(got.status);
      else {
        decoded++;
        expect(got.data.length).toBe(got.width * got.height * 3);
      }
    }
    expect(decoded).toBeGreaterThan(runs / 10);
    expect(slowest).toBeLessThan(1000);
  });
});

describe('sniffing', () => {
  const bytes = (...parts: (string | number[])[]) =>
    new Uint8Array(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)));

  it('knows GIF87a, GIF89a and RIFF/WEBP by their magic bytes', () => {
    expect(sniff(bytes('GIF87a', [1, 0, 1, 0]))).toBe('gif');
    expect(sniff(bytes('GIF89a'))).toBe('gif');
    expect(sniff(bytes('GIF88a'))).toBe(null);
    expect(sniff(bytes('RIFF', [4, 0, 0, 0], 'WEBPVP8 '))).toBe('webp');
    expect(sniff(bytes('RIFF', [4, 0, 0, 0], 'WAVE'))).toBe(null);
    expect(sniff(bytes('RIFF', [4, 0, 0, 0], 'WEB'))).toBe(null);
    expect(sniff(readCorpus('hopper.gif'))).toBe('gif');
    expect(sniff(readCorpus('hopper.webp'))).toBe('webp');
    expect(sniff(bytes([0xff, 0xd8, 0xff, 0xe0]))).toBe('jpeg');
    expect(sniff(bytes([0x89], 'PNG', [0x0d, 0x0a, 0x1a, 0x0a]))).toBe('png');
  });

  it('names common unsupported formats in the 415 message, and lists the supported ones', () => {
    const ftyp = (major: string, ...compat: string[]) =>
      bytes([0, 0, 0, 16 + 4 * compat.length], 'ftyp', major, [0, 0, 0, 0], ...compat);
    const cases: [Uint8Array, string][] = [
      [ftyp('avif', 'mif1', 'miaf'), 'AVIF'],
      [ftyp('mif1', 'avif'), 'AVIF'],
      [ftyp('heic', 'mif1'), 'HEIC/HEIF'],
      [ftyp('isom', 'mp41'), 'MP4/QuickTime (ISO media)'],
      [bytes('BM', new Array(20).fill(0)), 'BMP'],
      [bytes('II*', [0, 8, 0, 0, 0]), 'TIFF'],
      [bytes('MM', [0, 42, 0, 0, 0, 8]), 'TIFF'],
      [bytes([0xff, 0x0a, 0xfa]), 'JPEG XL'],
      [bytes([0, 0, 0, 0x0c], 'JXL ', [0x0d, 0x0a, 0x87, 0x0a]), 'JPEG XL'],
      [bytes([0, 0, 0, 0x0c], 'jP  ', [0x0d, 0x0a, 0x87, 0x0a]), 'JPEG 2000'],
      [bytes([0, 0, 1, 0, 1, 0]), 'ICO'],
      [bytes('8BPS', [0, 1]), 'PSD'],
      [bytes('qoif', [0, 0, 0, 1]), 'QOI'],
      [bytes('%PDF-1.7'), 'PDF'],
      [bytes('  <svg xmlns="http://www.w3.org/2000/svg">'), 'SVG'],
      [bytes('<?xml version="1.0"?><svg>'), 'SVG'],
      [bytes('P6\n3 2\n255\n'), 'Netpbm (PBM/PGM/PPM)'],
    ];
    for (const [b, name] of cases) {
      expect(sniff(b)).toBe(null);
      expect(unsupportedFormatMessage(b)).toBe(`${name} is not supported; send JPEG, PNG, WebP or GIF`);
    }
    expect(unsupportedFormatMessage(bytes('hello world'))).toBe('unrecognised image format; send JPEG, PNG, WebP or GIF');
    expect(unsupportedFormatMessage(new Uint8Array())).toBe('empty upload; send JPEG, PNG, WebP or GIF');
  });
});

/**
 * The image decoding layer (src/image) against PIL's decodes of the fixtures made by
 * scripts/make-image-fixtures.py, plus the error contract: 415 / 413 / 422 as ApiErrors.
 */
import { readFileSync } from 'node:fs';
import { zlibSync } from 'fflate';
import { decode as jpegJsDecode } from 'jpeg-js';
import { decodeJpegImage as jpegDecoder } from '../../src/image/jpeg/index';
import { decodePng as pngDecoder } from '../../src/image/png';
import { pngFile } from '../../models/src/png';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../src/errors';
import { applyOrientation, decodeImage, probe, readExifOrientation, sniff, type DecodeLimits, type RgbImage } from '../../src/image';

// Spies around the real decoders, to prove that refusals from the header happen before them.
vi.mock('../../src/image/jpeg/index', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/image/jpeg/index')>();
  return { ...real, decodeJpegImage: vi.fn(real.decodeJpegImage), decodeJpegTo: vi.fn(real.decodeJpegTo) };
});
vi.mock('../../src/image/png', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/image/png')>();
  return { ...real, decodePng: vi.fn(real.decodePng), decodePngTo: vi.fn(real.decodePngTo) };
});

afterEach(() => vi.clearAllMocks());

const DIR = new URL('../fixtures/images/', import.meta.url);
const read = (file: string): Uint8Array => new Uint8Array(readFileSync(new URL(file, DIR)));

interface Fixture {
  file: string;
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  orientation: number;
  ref: string;
  refWidth: number;
  refHeight: number;
  note: string;
  /** The reference keeps every refStep-th pixel of every refStep-th row. */
  refStep: number;
}
const manifest = JSON.parse(readFileSync(new URL('manifest.json', DIR), 'utf8')) as { fixtures: Record<string, Fixture> };
const fixtures = Object.entries(manifest.fixtures);
const fixture = (name: string): Fixture => {
  const f = manifest.fixtures[name];
  if (!f) throw new Error(`no fixture ${name}`);
  return f;
};

const LIMITS: DecodeLimits = { maxPixels: 16_000_000, maxMemoryMB: 256 };

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

function expectStatus(fn: () => unknown, status: number, message?: RegExp): ApiError {
  const err = apiError(fn);
  expect(err instanceof ApiError && err.status).toBe(status);
  if (message) expect(err.message).toMatch(message);
  return err;
}

function difference(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { max, mean: sum / a.length };
}

/** Every step-th pixel of every step-th row, as the fixture script stores large references. */
function sample({ width, height, data }: RgbImage, step: number): Uint8Array {
  const out: number[] = [];
  for (let y = 0; y < height; y += step) {
    for (let x = 0; x < width; x += step) out.push(...data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3));
  }
  return new Uint8Array(out);
}

const concat = (...parts: ArrayLike<number>[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** Deterministic bytes (xorshift32), so a failure can be replayed. */
function noise(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

// ---- PNG building blocks for hand-made edge cases ---------------------------------------------

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** An 8-bit grayscale PNG of the given size whose image data is `raw`, zlib-compressed. */
function grayPng(width: number, height: number, raw: Uint8Array): Uint8Array {
  return pngFile(width, height, zlibSync(raw), { colorType: 0 });
}

/** Offset of the first `FF code` marker in a JPEG. */
function markerOffset(bytes: Uint8Array, code: number): number {
  for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 0xff && bytes[i + 1] === code) return i;
  throw new Error(`no marker ${code.toString(16)}`);
}

// ------------------------------------------------------------------------------------------------

describe('sniff', () => {
  it('knows JPEG and PNG by their magic bytes', () => {
    expect(sniff(read('jpeg-baseline-444.jpg'))).toBe('jpeg');
    expect(sniff(read('jpeg-progressive.jpg'))).toBe('jpeg');
    expect(sniff(read('png-rgb8.png'))).toBe('png');
  });

  it('knows GIF and WebP; gives null for text, garbage, other RIFF files and cut-off signatures', () => {
    const ascii = (s: string) => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
    expect(sniff(concat(ascii('GIF89a'), [1, 0, 1, 0, 0, 0, 0]))).toBe('gif');
    expect(sniff(concat(ascii('RIFF'), [0, 0, 0, 0], ascii('WEBPVP8 ')))).toBe('webp');
    expect(sniff(concat(ascii('RIFF'), [0, 0, 0, 0], ascii('WAVEfmt ')))).toBeNull();
    expect(sniff(ascii('not an image'))).toBeNull();
    expect(sniff(noise(1, 64).map((b, i) => (i === 0 ? 0 : b)))).toBeNull();
    expect(sniff(new Uint8Array(0))).toBeNull();
    expect(sniff(new Uint8Array([0xff, 0xd8]))).toBeNull();
    expect(sniff(new Uint8Array(PNG_SIG.slice(0, 7)))).toBeNull();
  });

  it('makes decodeImage and probe answer 415, naming the format and what we read', () => {
    // An AVIF's ftyp box: recognised, and refused with the list of supported formats.
    const avif = new Uint8Array([0, 0, 0, 0x1c, 0x66, 0x74, 0x79, 0x70, 0x61, 0x76, 0x69, 0x66, 0, 0, 0, 0]);
    expectStatus(() => decodeImage(avif, LIMITS), 415, /AVIF is not supported; send JPEG, PNG, WebP or GIF/);
    expectStatus(() => probe(avif), 415);
    expect(apiError(() => probe(avif)).type).toBe('unsupported_media_type');
    expectStatus(() => probe(new TextEncoder().encode('hello')), 415, /JPEG, PNG, WebP or GIF/);
  });
});

describe('probe', () => {
  it.each(fixtures)('reads %s from its header alone', (_name, f) => {
    expect(probe(read(f.file))).toEqual({ format: f.format, width: f.width, height: f.height, orientation: f.orientation });
    expect(jpegDecoder).not.toHaveBeenCalled();
    expect(pngDecoder).not.toHaveBeenCalled();
  });

  it('skips APPn/COM segments even when they contain bytes that look like a SOF', () => {
    const jpeg = read('jpeg-baseline-444.jpg');
    const fakeSof = [0xff, 0xc0, 0x00, 0x11, 0x08, 0x4e, 0x20, 0x4e, 0x20, 0x03];
    const com = concat([0xff, 0xfe, 0x00, fakeSof.length + 2], fakeSof);
    const app2 = concat([0xff, 0xe2, 0x00, fakeSof.length + 2], fakeSof);
    const patched = concat(jpeg.subarray(0, 2), com, app2, jpeg.subarray(2));
    expect(probe(patched)).toMatchObject({ width: 96, height: 64 });
    expect(decodeImage(patched, LIMITS).data).toEqual(decodeImage(jpeg, LIMITS).data);
  });

  it('skips 0xFF fill bytes before a marker', () => {
    const jpeg = read('jpeg-baseline-444.jpg');
    const sof = markerOffset(jpeg, 0xc0);
    const patched = concat(jpeg.subarray(0, sof), [0xff, 0xff, 0xff], jpeg.subarray(sof));
    expect(probe(patched)).toMatchObject({ width: 96, height: 64 });
    expect(decodeImage(patched, LIMITS).data).toEqual(decodeImage(jpeg, LIMITS).data);
  });

  it('refuses too many pixels when given limits, and not otherwise', () => {
    const png = read('png-rgb8.png'); // 37x23 = 851 pixels
    expect(probe(png, { maxPixels: 851 })).toMatchObject({ width: 37, height: 23 });
    expectStatus(() => probe(png, { maxPixels: 850 }), 413, /37x23/);
  });

  it('answers 422 for a JPEG cut off before its frame header', () => {
    const jpeg = read('jpeg-orient-6.jpg');
    expectStatus(() => probe(jpeg.subarray(0, markerOffset(jpeg, 0xc0) - 1)), 422, /truncated/);
  });
});

describe('pixel and memory limits', () => {
  /** SOI, SOF0 claiming 20000x20000 with 3 components, a token scan, EOI: 39 bytes. */
  const hugeJpeg = new Uint8Array([
    0xff, 0xd8,
    0xff, 0xc0, 0x00, 0x11, 0x08, 0x4e, 0x20, 0x4e, 0x20, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01,
    0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0x12, 0x34,
    0xff, 0xd9,
  ]);

  it('refuses a tiny JPEG whose SOF claims 20000x20000 without decoding it', () => {
    expect(hugeJpeg.length).toBe(39);
    expect(probe(hugeJpeg)).toEqual({ format: 'jpeg', width: 20000, height: 20000, orientation: 1 });
    const err = expectStatus(() => decodeImage(hugeJpeg, LIMITS), 413, /20000x20000/);
    expect(err.type).toBe('payload_too_large');
    expect(jpegDecoder).not.toHaveBeenCalled();
  });

  it('refuses a tiny PNG whose IHDR claims 20000x20000 without decoding it', () => {
    const png = grayPng(20000, 20000, new Uint8Array(16));
    expect(png.length).toBeLessThan(100);
    expectStatus(() => decodeImage(png, LIMITS), 413, /20000x20000/);
    expect(pngDecoder).not.toHaveBeenCalled();
  });

  it('allows exactly maxPixels', () => {
    expect(decodeImage(read('jpeg-gray.jpg'), { maxPixels: 96 * 64 }).width).toBe(96);
    expect(decodeImage(read('png-rgb8.png'), { maxPixels: 37 * 23 }).width).toBe(37);
    expectStatus(() => decodeImage(read('jpeg-gray.jpg'), { maxPixels: 96 * 64 - 1 }), 413);
  });

  it('refuses with 413 when the decoder would need more than maxMemoryMB', () => {
    // By the decoders' own accounting (planDecode): both need more than these few kB.
    expectStatus(() => decodeImage(read('jpeg-baseline-444.jpg'), { maxPixels: 1e6, maxMemoryMB: 0.01 }), 413, /MB/);
    expectStatus(() => decodeImage(read('png-rgba16.png'), { maxPixels: 1e6, maxMemoryMB: 0.001 }), 413, /MB/);
    expect(pngDecoder).not.toHaveBeenCalled();
  });
});

describe('JPEG decoding matches PIL', () => {
  // jpeg-js and libjpeg differ in IDCT rounding (a level or two) and, for subsampled chroma,
  // in upsampling: jpeg-js repeats chroma samples, libjpeg interpolates ("fancy upsampling"),
  // which moves colour edges by up to ~20 levels while the mean stays near 1.
  const FULL = { max: 4, mean: 0.75 };
  const SUBSAMPLED = { max: 32, mean: 1.5 };
  it.each([
    ['jpeg-baseline-444', FULL],
    ['jpeg-baseline-420', SUBSAMPLED],
    ['jpeg-progressive', SUBSAMPLED],
    ['jpeg-restart-420', SUBSAMPLED],
    ['jpeg-gray', FULL],
    ['jpeg-gray-restart', FULL],
    ['jpeg-cmyk', FULL],
    ['jpeg-rgb-adobe', FULL],
  ] as const)('%s', (name, tolerance) => {
    const f = fixture(name);
    const image = decodeImage(read(f.file), LIMITS);
    expect([image.width, image.height]).toEqual([f.refWidth, f.refHeight]);
    expect(image.data.length).toBe(image.width * image.height * 3);
    const d = difference(image.data, read(f.ref));
    expect(d.max).toBeLessThanOrEqual(tolerance.max);
    expect(d.mean).toBeLessThanOrEqual(tolerance.mean);
  });

  it('gives gray JPEGs R = G = B', () => {
    const { data } = decodeImage(read('jpeg-gray.jpg'), LIMITS);
    for (let i = 0; i < data.length; i += 3) expect(data[i] === data[i + 1] && data[i] === data[i + 2]).toBe(true);
  });

  it('decodes RGB-stored JPEGs as RGB, which jpeg-js alone would not', () => {
    // Proves the fixture exercises the colour-model rule: jpeg-js's default reads it as YCbCr.
    const bytes = read('jpeg-rgb-adobe.jpg');
    const naive = jpegJsDecode(bytes, { useTArray: true, formatAsRGBA: false });
    expect(difference(naive.data, read('jpeg-rgb-adobe.rgb')).mean).toBeGreaterThan(20);
  });

  it('decodes a gray JPEG whose restart interval does not divide its block count', () => {
    // Proves the fixture exercises the reason for tolerantDecoding: strict jpeg-js fails on it.
    expect(() => jpegJsDecode(read('jpeg-gray-restart.jpg'), { useTArray: true, tolerantDecoding: false })).toThrow();
  });

  it('decodes a real photo (chelsea, 451x300, baseline 4:2:0)', () => {
    const f = fixture('chelsea');
    const image = decodeImage(read(f.file), LIMITS);
    expect([image.width, image.height]).toEqual([451, 300]);
    const d = difference(sample(image, f.refStep), read(f.ref));
    expect(d.mean).toBeLessThanOrEqual(SUBSAMPLED.mean);
    expect(d.max).toBeLessThanOrEqual(48);
  });
});

describe('EXIF orientation', () => {
  const target = read('orient-target.rgb'); // 32x16, upright
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('orientation %i comes out upright', (o) => {
    const f = fixture(`jpeg-orient-${o}`);
    expect(probe(read(f.file)).orientation).toBe(o);
    const image = decodeImage(read(f.file), LIMITS);
    expect([image.width, image.height]).toEqual([32, 16]);
    // Flat 8x8 blocks: any misplaced row or column would be off by 100+ levels somewhere.
    expect(difference(image.data, target).max).toBeLessThanOrEqual(8);
    expect(difference(image.data, read(f.ref)).max).toBeLessThanOrEqual(2);
  });

  it('is applied from a PNG eXIf chunk too', () => {
    const f = fixture('png-rgb8-exif6');
    const image = decodeImage(read(f.file), LIMITS);
    expect([image.width, image.height]).toEqual([23, 37]);
    expect(image.data).toEqual(read(f.ref));
  });

  describe('applyOrientation', () => {
    // 3x2 image whose pixels are numbered
    //   1 2 3
    //   4 5 6
    // and what each orientation must show.
    const src = (): RgbImage => ({ width: 3, height: 2, data: new Uint8Array([1, 2, 3, 4, 5, 6].flatMap((v) => [v, v + 10, v + 20])) });
    const expected: Record<number, [number, number, number[]]> = {
      1: [3, 2, [1, 2, 3, 4, 5, 6]],
      2: [3, 2, [3, 2, 1, 6, 5, 4]],
      3: [3, 2, [6, 5, 4, 3, 2, 1]],
      4: [3, 2, [4, 5, 6, 1, 2, 3]],
      5: [2, 3, [1, 4, 2, 5, 3, 6]],
      6: [2, 3, [4, 1, 5, 2, 6, 3]],
      7: [2, 3, [6, 3, 5, 2, 4, 1]],
      8: [2, 3, [3, 6, 2, 5, 1, 4]],
    };
    it.each([1, 2, 3, 4, 5, 6, 7, 8])('orientation %i', (o) => {
      const [w, h, order] = expected[o]!;
      const out = applyOrientation(src(), o);
      expect([out.width, out.height]).toEqual([w, h]);
      expect([...out.data]).toEqual(order.flatMap((v) => [v, v + 10, v + 20]));
    });
    it('leaves unknown values alone', () => {
      expect([...applyOrientation(src(), 0).data]).toEqual([...src().data]);
      expect([...applyOrientation(src(), 9).data]).toEqual([...src().data]);
    });
  });

  describe('readExifOrientation', () => {
    /** TIFF with IFD0 = [(tag, type, value)], little- or big-endian. */
    function tiff(entries: Array<[number, number, number]>, little: boolean): Uint8Array {
      const out = new Uint8Array(8 + 2 + entries.length * 12 + 4);
      const v = new DataView(out.buffer);
      out.set(little ? [0x49, 0x49] : [0x4d, 0x4d]);
      v.setUint16(2, 42, little);
      v.setUint32(4, 8, little);
      v.setUint16(8, entries.length, little);
      entries.forEach(([tag, type, value], i) => {
        const e = 10 + i * 12;
        v.setUint16(e, tag, little);
        v.setUint16(e + 2, type, little);
        v.setUint32(e + 4, 1, little);
        if (type === 3) v.setUint16(e + 8, value, little);
        else v.setUint32(e + 8, value, little);
      });
      return out;
    }
    it('reads II and MM, SHORT and LONG, with or without the Exif prefix', () => {
      expect(readExifOrientation(tiff([[0x010f, 2, 0], [0x0112, 3, 6]], true))).toBe(6);
      expect(readExifOrientation(tiff([[0x0112, 3, 8]], false))).toBe(8);
      expect(readExifOrientation(tiff([[0x0112, 4, 3]], false))).toBe(3);
      expect(readExifOrientation(concat([0x45, 0x78, 0x69, 0x66, 0, 0], tiff([[0x0112, 3, 5]], true)))).toBe(5);
    });
    it('gives 1 for missing, out-of-range or unreadable data', () => {
      expect(readExifOrientation(tiff([[0x010f, 2, 0]], true))).toBe(1);
      expect(readExifOrientation(tiff([[0x0112, 3, 9]], true))).toBe(1);
      expect(readExifOrientation(tiff([[0x0112, 3, 0]], true))).toBe(1);
      expect(readExifOrientation(tiff([[0x0112, 3, 6]], true).subarray(0, 20))).toBe(1); // IFD cut off
      expect(readExifOrientation(new Uint8Array([0x49, 0x49, 42, 0, 0xff, 0xff, 0, 0]))).toBe(1); // IFD offset out of range
      expect(readExifOrientation(new Uint8Array([0x58, 0x58, 42, 0, 8, 0, 0, 0]))).toBe(1);
      expect(readExifOrientation(noise(3, 200))).toBe(1);
    });
  });
});

describe('PNG decoding matches PIL exactly', () => {
  const pngs = fixtures.filter(([, f]) => f.format === 'png');
  it('covers every colour type, the bit depths and Adam7', () => {
    expect(pngs.map(([name]) => name)).toEqual(
      expect.arrayContaining([
        'png-gray1', 'png-gray2', 'png-gray4', 'png-gray8', 'png-gray16', 'png-graya8', 'png-graya16',
        'png-rgb8', 'png-rgb16', 'png-rgba8', 'png-rgba16', 'png-palette1', 'png-palette2', 'png-palette4',
        'png-palette8', 'png-rgb8-adam7', 'png-rgba16-adam7', 'png-gray2-adam7', 'png-palette4-adam7',
      ]),
    );
  });
  it.each(pngs)('%s', (_name, f) => {
    const image = decodeImage(read(f.file), LIMITS);
    expect([image.width, image.height]).toEqual([f.refWidth, f.refHeight]);
    expect(image.data.length).toBe(image.width * image.height * 3);
    expect(Buffer.from(image.data).equals(Buffer.from(read(f.ref)))).toBe(true);
  });
  it('drops alpha rather than compositing it (a fully transparent pixel keeps its colour)', () => {
    const rgb = decodeImage(read('png-rgb8.png'), LIMITS).data;
    expect(decodeImage(read('png-rgba8.png'), LIMITS).data).toEqual(rgb);
    expect(decodeImage(read('png-rgba16-adam7.png'), LIMITS).data).toEqual(rgb);
  });
});

describe('corrupt and truncated files give 422', () => {
  it.each(['jpeg-baseline-444', 'jpeg-progressive', 'jpeg-gray-restart', 'jpeg-cmyk'])('truncated %s', (name) => {
    const bytes = read(fixture(name).file);
    for (const cut of [bytes.length - 2, bytes.length - 1, Math.floor(bytes.length * 0.8), Math.floor(bytes.length * 0.5), markerOffset(bytes, 0xda) + 20]) {
      const err = expectStatus(() => decodeImage(bytes.subarray(0, cut), LIMITS), 422, /truncated/);
      expect(err.type).toBe('unprocessable_image');
    }
  });

  it('ignores bytes after EOI', () => {
    const bytes = read('jpeg-baseline-444.jpg');
    const padded = concat(bytes, noise(9, 100));
    expect(decodeImage(padded, LIMITS).data).toEqual(decodeImage(bytes, LIMITS).data);
  });

  it('random bytes after a JPEG magic', () => {
    // Like libjpeg we skip stray bytes between markers, so noise may turn up a frame header
    // claiming any size: a 413 from the pixel limit is as right an answer as a 422.
    const statuses = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const bytes = concat([0xff, 0xd8, 0xff], noise(seed, 1 + (seed % 7) * 300));
      let status = 0;
      try {
        decodeImage(bytes, LIMITS);
      } catch (err) {
        if (err instanceof ApiError) status = err.status;
      }
      expect([413, 422], `seed ${seed}`).toContain(status);
      statuses.add(status);
    }
    expect(statuses).toContain(422);
  });

  it('random entropy-coded data in a well-formed JPEG', () => {
    // Headers intact, scan replaced by noise (with 0xFF stuffed): only jpeg-js can object.
    const bytes = read('jpeg-baseline-444.jpg');
    const sos = markerOffset(bytes, 0xda);
    const scanData = sos + 2 + ((bytes[sos + 2]! << 8) | bytes[sos + 3]!);
    for (let seed = 1; seed <= 20; seed++) {
      const junk = [...noise(seed, 3000)].flatMap((b) => (b === 0xff ? [0xff, 0x00] : [b]));
      const corrupt = concat(bytes.subarray(0, scanData), junk, [0xff, 0xd9]);
      try {
        const image = decodeImage(corrupt, LIMITS);
        // Noise can be valid Huffman data; then it must at least be a whole image.
        expect(image.data.length).toBe(96 * 64 * 3);
      } catch (err) {
        expect(err instanceof ApiError && err.status).toBe(422);
      }
    }
  });

  it('unsupported JPEG processes and precisions', () => {
    const bytes = read('jpeg-baseline-444.jpg');
    const sof = markerOffset(bytes, 0xc0);
    const withSof = (code: number) => bytes.map((b, i) => (i === sof + 1 ? code : b));
    // Arithmetic coding (0xc9, 0xca) is decoded (test/node/jpeg-exact.test.ts); its lossless form is not.
    expectStatus(() => decodeImage(withSof(0xcb), LIMITS), 422, /lossless/);
    expectStatus(() => decodeImage(withSof(0xcd), LIMITS), 422, /hierarchical/);
    expectStatus(() => decodeImage(withSof(0xc3), LIMITS), 422, /lossless/);
    expectStatus(() => decodeImage(withSof(0xc5), LIMITS), 422, /hierarchical/);
    expectStatus(() => decodeImage(bytes.map((b, i) => (i === sof + 4 ? 12 : b)), LIMITS), 422, /12-bit/);
  });

  it('truncated PNGs', () => {
    const bytes = read('png-rgb8.png');
    for (const cut of [Math.floor(bytes.length * 0.6), 40, 20]) {
      expectStatus(() => decodeImage(bytes.subarray(0, cut), LIMITS), 422, /truncated/);
    }
    // A missing or cut IEND loses no pixels: Pillow decodes such files, and so do we.
    for (const cut of [bytes.length - 1, bytes.length - 12]) {
      expect(decodeImage(bytes.subarray(0, cut), LIMITS).data).toEqual(decodeImage(bytes, LIMITS).data);
    }
  });

  it('a PNG whose compressed data holds fewer rows than its header says', () => {
    const rows = 10;
    const raw = new Uint8Array(rows * 17); // filter byte 0 + 16 gray samples a row
    expect(decodeImage(grayPng(16, rows, raw), LIMITS).width).toBe(16);
    expectStatus(() => decodeImage(grayPng(16, rows, raw.subarray(0, 5 * 17)), LIMITS), 422, /ends early/);
  });

  it('an inflation bomb: 2 MB of zeros in a 16x16 PNG, refused while inflating', () => {
    const bomb = grayPng(16, 16, new Uint8Array(2 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(4096);
    expectStatus(() => decodeImage(bomb, LIMITS), 422, /more image data/);
  });

  it('a PNG with a damaged IDAT (CRC mismatch or bad zlib data)', () => {
    const bytes = read('png-rgb8.png');
    const idat = [...bytes.keys()].find((i) => String.fromCharCode(...bytes.subarray(i, i + 4)) === 'IDAT')!;
    for (const offset of [20, 200, 600]) {
      const damaged = bytes.map((b, i) => (i === idat + 4 + offset ? b ^ 0x5a : b));
      expectStatus(() => decodeImage(damaged, LIMITS), 422, /corrupt PNG/);
    }
  });

  it('random bytes after a PNG signature, and a bad IHDR', () => {
    for (let seed = 1; seed <= 100; seed++) {
      expectStatus(() => decodeImage(concat(PNG_SIG, noise(seed, 50 + seed * 10)), LIMITS), 422);
    }
    const badDepth = grayPng(4, 4, new Uint8Array(20)).map((b, i) => (i === 24 ? 3 : b));
    expectStatus(() => decodeImage(badDepth, LIMITS), 422, /bit depth 3/);
    expectStatus(() => decodeImage(grayPng(0, 4, new Uint8Array(4)), LIMITS), 422, /bad size/);
  });
});

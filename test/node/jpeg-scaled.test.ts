/**
 * src/image/jpeg-scaled.ts (DCT-domain 1/2, 1/4, 1/8 decoding) against jpeg-js, and the
 * decodeImage plumbing that picks the scale from `minShorterSide`:
 * - denom 1 equals jpeg-js within IDCT rounding (validates Huffman, dequantization, restarts,
 *   sampling, colour conversion);
 * - denom 2/4/8 have the right size and are close to a box-downscale of jpeg-js's decode;
 * - the requirement: on a 12 MP photo the model's 224x224 crop from the 1/8 decode is within
 *   a few 8-bit levels of the crop from the full decode;
 * - the scaled path never calls jpeg-js (no full-size buffer); what it does not cover does.
 */
import { readFileSync } from 'node:fs';
import { decode as jpegJsDecode, encode as jpegJsEncode } from 'jpeg-js';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../src/errors';
import { applyOrientation, decodeImage, jpegScaleFor, type DecodeLimits, type RgbImage } from '../../src/image';
import { readJpegHeader } from '../../src/image/jpeg';
import { decodeJpegScaled, type JpegScale } from '../../src/image/jpeg-scaled';
import { resizeCropU8 } from '../../src/preprocess/reference';
import type { PreprocessSpec } from '../../src/preprocess/types';

// A spy around the real jpeg-js decode: the scaled path must never reach it.
vi.mock('jpeg-js', async (importOriginal) => {
  const real = await importOriginal<typeof import('jpeg-js')>();
  return { ...real, decode: vi.fn(real.decode) };
});
afterEach(() => vi.clearAllMocks());

const read = (path: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../fixtures/${path}`, import.meta.url)));

/** jpeg-js's RGB decode, the full-size reference. */
function jpegJs(bytes: Uint8Array): RgbImage {
  const d = jpegJsDecode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 2048, maxResolutionInMP: 20 });
  return { width: d.width, height: d.height, data: d.data };
}

function scaled(bytes: Uint8Array, denom: JpegScale): RgbImage {
  const image = decodeJpegScaled(bytes, readJpegHeader(bytes), denom);
  if (!image) throw new Error('decodeJpegScaled fell back');
  return image;
}

function diff(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / a.length };
}

/** Mean of each d x d cell (clipped at the edges): what a 1/d DCT-domain decode approximates. */
function boxDownscale(img: RgbImage, d: number): RgbImage {
  const w = Math.ceil(img.width / d);
  const h = Math.ceil(img.height / d);
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        let n = 0;
        for (let yy = y * d; yy < Math.min(img.height, (y + 1) * d); yy++) {
          for (let xx = x * d; xx < Math.min(img.width, (x + 1) * d); xx++) {
            sum += img.data[(yy * img.width + xx) * 3 + c]!;
            n++;
          }
        }
        data[(y * w + x) * 3 + c] = Math.round(sum / n);
      }
    }
  }
  return { width: w, height: h, data };
}

/** Plain bilinear (pixel-centre aligned) upscale: enough to make a realistic 12 MP photo. */
function bilinearResize(img: RgbImage, w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  const sx = img.width / w;
  const sy = img.height / h;
  for (let y = 0; y < h; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), img.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, img.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), img.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, img.width - 1);
      const wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const p = (yy: number, xx: number): number => img.data[(yy * img.width + xx) * 3 + c]!;
        const top = p(y0, x0) * (1 - wx) + p(y0, x1) * wx;
        const bottom = p(y1, x0) * (1 - wx) + p(y1, x1) * wx;
        data[(y * w + x) * 3 + c] = Math.round(top * (1 - wy) + bottom * wy);
      }
    }
  }
  return { width: w, height: h, data };
}

/**
 * `img` tiled to w x h, every other tile mirrored so there are no seams: a 12 MP image that
 * keeps a real photo's fine detail at its native scale (an upscale would smooth it away).
 */
function mirrorTile(img: RgbImage, w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  const fold = (v: number, n: number): number => {
    const t = Math.floor(v / n);
    const r = v % n;
    return t % 2 === 0 ? r : n - 1 - r;
  };
  for (let y = 0; y < h; y++) {
    const sy = fold(y, img.height);
    for (let x = 0; x < w; x++) {
      const si = (sy * img.width + fold(x, img.width)) * 3;
      const di = (y * w + x) * 3;
      data[di] = img.data[si]!;
      data[di + 1] = img.data[si + 1]!;
      data[di + 2] = img.data[si + 2]!;
    }
  }
  return { width: w, height: h, data };
}

/** jpeg-js encodes RGBA input; its output is baseline 4:4:4 with standard tables. */
function encodeJpeg(img: RgbImage, quality: number): Uint8Array {
  const rgba = new Uint8Array(img.width * img.height * 4);
  for (let i = 0, j = 0; i < img.data.length; i += 3, j += 4) {
    rgba[j] = img.data[i]!;
    rgba[j + 1] = img.data[i + 1]!;
    rgba[j + 2] = img.data[i + 2]!;
    rgba[j + 3] = 255;
  }
  return new Uint8Array(jpegJsEncode({ width: img.width, height: img.height, data: rgba }, quality).data);
}

/**
 * A minimal baseline JPEG encoder, test-only, for the layouts neither jpeg-js's encoder nor the
 * fixtures offer: any sampling factors (4:2:2, 4:4:0, 4:1:1), one scan per component
 * (non-interleaved), restart intervals. Flat quantization (q = 6) and trivial Huffman tables
 * (every DC category a 4-bit code, every AC run/size an 8-bit code) keep it short; decoders
 * must accept any valid tables, so that exercises the table handling as well.
 */
function encodeBaseline(img: RgbImage, sampling: [number, number][], opts: { interleaved: boolean; restart: number }): Uint8Array {
  const { width: w, height: h } = img;
  const maxH = Math.max(...sampling.map(([sh]) => sh));
  const maxV = Math.max(...sampling.map(([, sv]) => sv));
  // Full-resolution YCbCr planes (JFIF), then each box-downsampled by its factors.
  const full = [0, 1, 2].map(() => new Float64Array(w * h));
  for (let i = 0; i < w * h; i++) {
    const r = img.data[i * 3]!;
    const g = img.data[i * 3 + 1]!;
    const b = img.data[i * 3 + 2]!;
    full[0]![i] = 0.299 * r + 0.587 * g + 0.114 * b;
    full[1]![i] = -0.168736 * r - 0.331264 * g + 0.5 * b + 128;
    full[2]![i] = 0.5 * r - 0.418688 * g - 0.081312 * b + 128;
  }
  const comps = sampling.map(([sh, sv], ci) => {
    const fx = maxH / sh;
    const fy = maxV / sv;
    const cw = Math.ceil(w / fx);
    const ch = Math.ceil(h / fy);
    const plane = new Float64Array(cw * ch);
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        let sum = 0;
        let n = 0;
        for (let yy = y * fy; yy < Math.min(h, (y + 1) * fy); yy++) {
          for (let xx = x * fx; xx < Math.min(w, (x + 1) * fx); xx++, n++) sum += full[ci]![yy * w + xx]!;
        }
        plane[y * cw + x] = sum / n;
      }
    }
    return { sh, sv, cw, ch, plane, pred: 0 };
  });
  const Q = 6;
  const out: number[] = [];
  const u16 = (v: number): void => void out.push(v >> 8, v & 255);
  const segment = (marker: number, body: number[]): void => {
    out.push(0xff, marker);
    u16(body.length + 2);
    out.push(...body);
  };
  out.push(0xff, 0xd8);
  segment(0xdb, [0, ...new Array<number>(64).fill(Q)]);
  segment(0xc0, [8, h >> 8, h & 255, w >> 8, w & 255, 3, ...comps.flatMap((c, i) => [i + 1, (c.sh << 4) | c.sv, 0])]);
  // DC: categories 0..11 as 4-bit codes 0..11. AC: EOB, ZRL and every (run, size 1..10), 8-bit codes.
  const acSymbols = [0x00, 0xf0];
  for (let r = 0; r < 16; r++) for (let sz = 1; sz <= 10; sz++) acSymbols.push((r << 4) | sz);
  const dcCounts = new Array<number>(16).fill(0);
  dcCounts[3] = 12;
  const acCounts = new Array<number>(16).fill(0);
  acCounts[7] = acSymbols.length;
  segment(0xc4, [0x00, ...dcCounts, ...Array.from({ length: 12 }, (_, i) => i), 0x10, ...acCounts, ...acSymbols]);
  const acCode = new Map(acSymbols.map((sym, i) => [sym, i]));
  if (opts.restart) segment(0xdd, [opts.restart >> 8, opts.restart & 255]);

  let acc = 0;
  let nbits = 0;
  const put = (code: number, len: number): void => {
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | ((code >> i) & 1);
      if (++nbits === 8) {
        out.push(acc);
        if (acc === 0xff) out.push(0); // byte stuffing
        acc = 0;
        nbits = 0;
      }
    }
  };
  const flush = (): void => {
    while (nbits !== 0) put(1, 1);
  };
  const category = (v: number): number => (v === 0 ? 0 : 32 - Math.clz32(Math.abs(v)));
  const putValue = (v: number, cat: number): void => put(v >= 0 ? v : v + (1 << cat) - 1, cat);
  const block = new Float64Array(64);
  const encodeBlock = (c: (typeof comps)[number], bx: number, by: number): void => {
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const sx = Math.min(bx * 8 + x, c.cw - 1); // edge replication into the padding
        const sy = Math.min(by * 8 + y, c.ch - 1);
        block[y * 8 + x] = c.plane[sy * c.cw + sx]! - 128;
      }
    }
    const coef = new Int32Array(64);
    for (let v = 0; v < 8; v++) {
      for (let u = 0; u < 8; u++) {
        let sum = 0;
        for (let y = 0; y < 8; y++) {
          for (let x = 0; x < 8; x++) sum += block[y * 8 + x]! * Math.cos(((2 * x + 1) * u * Math.PI) / 16) * Math.cos(((2 * y + 1) * v * Math.PI) / 16);
        }
        const cu = u === 0 ? Math.SQRT1_2 : 1;
        const cv = v === 0 ? Math.SQRT1_2 : 1;
        coef[v * 8 + u] = Math.round((0.25 * cu * cv * sum) / Q);
      }
    }
    const diff = coef[0]! - c.pred;
    c.pred = coef[0]!;
    const dcCat = category(diff);
    put(dcCat, 4);
    putValue(diff, dcCat);
    let run = 0;
    for (let k = 1; k < 64; k++) {
      const v = coef[ZIGZAG[k]!]!;
      if (v === 0) {
        run++;
        continue;
      }
      while (run > 15) {
        put(acCode.get(0xf0)!, 8);
        run -= 16;
      }
      const cat = category(v);
      put(acCode.get((run << 4) | cat)!, 8);
      putValue(v, cat);
      run = 0;
    }
    if (run > 0) put(acCode.get(0x00)!, 8);
  };
  const scan = (members: typeof comps, units: Array<() => void>): void => {
    segment(0xda, [members.length, ...members.flatMap((c) => [comps.indexOf(c) + 1, 0x00]), 0, 63, 0]);
    for (const c of members) c.pred = 0;
    units.forEach((unit, i) => {
      if (opts.restart && i > 0 && i % opts.restart === 0) {
        flush();
        out.push(0xff, 0xd0 + ((i / opts.restart - 1) & 7));
        for (const c of members) c.pred = 0;
      }
      unit();
    });
    flush();
  };
  if (opts.interleaved) {
    const units: Array<() => void> = [];
    for (let my = 0; my < Math.ceil(h / (8 * maxV)); my++) {
      for (let mx = 0; mx < Math.ceil(w / (8 * maxH)); mx++) {
        units.push(() => {
          for (const c of comps) for (let v = 0; v < c.sv; v++) for (let u = 0; u < c.sh; u++) encodeBlock(c, mx * c.sh + u, my * c.sv + v);
        });
      }
    }
    scan(comps, units);
  } else {
    for (const c of comps) {
      const units: Array<() => void> = [];
      for (let by = 0; by < Math.ceil(c.ch / 8); by++) for (let bx = 0; bx < Math.ceil(c.cw / 8); bx++) units.push(() => encodeBlock(c, bx, by));
      scan([c], units);
    }
  }
  out.push(0xff, 0xd9);
  return Uint8Array.from(out);
}

/** Zig-zag position -> natural index (T.81 Figure A.6), for the test encoder. */
const ZIGZAG = Uint8Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35,
  42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62,
  63,
]);

const IMAGENET: Pick<PreprocessSpec, 'mean' | 'std'> = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const SPEC: PreprocessSpec = { resizeShorter: 256, cropHeight: 224, cropWidth: 224, ...IMAGENET };
const BIG_LIMITS: DecodeLimits = { maxPixels: 16_000_000, maxMemoryMB: 1024 };

/** Baseline fixtures the scaled decoder covers: sampling 4:2:0 / 4:4:4 / grey, restarts, real photos. */
const BASELINE = [
  'images/jpeg-baseline-420.jpg',
  'images/jpeg-baseline-444.jpg',
  'images/jpeg-gray.jpg',
  'images/jpeg-gray-restart.jpg',
  'images/jpeg-restart-420.jpg',
  'images/chelsea.jpg',
  'photos/coffee.jpg',
  'photos/rocket.jpg',
];

describe('decodeJpegScaled at full scale matches jpeg-js', () => {
  it.each(BASELINE)('%s', (file) => {
    const bytes = read(file);
    const ref = jpegJs(bytes);
    const out = scaled(bytes, 1);
    expect([out.width, out.height]).toEqual([ref.width, ref.height]);
    const { max, mean } = diff(out.data, ref.data);
    // Measured: max 3 (1 for grey), mean 0.06-0.17. The IDCTs differ in rounding (ours is
    // float, jpeg-js's fixed point); the chroma factors (up to 1.772) amplify it.
    expect(max).toBeLessThanOrEqual(4);
    expect(mean).toBeLessThan(0.3);
  });
});

describe('decodeJpegScaled at 1/2, 1/4, 1/8', () => {
  const rows: string[] = [];
  // The measured numbers, printed once for the report.
  afterAll(() => console.log(rows.join('\n')));

  it.each(BASELINE.flatMap((file) => ([2, 4, 8] as const).map((denom) => [file, denom] as const)))('%s at 1/%i', (file, denom) => {
    const bytes = read(file);
    const ref = jpegJs(bytes);
    const out = scaled(bytes, denom);
    expect([out.width, out.height]).toEqual([Math.ceil(ref.width / denom), Math.ceil(ref.height / denom)]);
    const { max, mean } = diff(out.data, boxDownscale(ref, denom).data);
    rows.push(`${file} 1/${denom}: vs box-downscale of jpeg-js max ${max} mean ${mean.toFixed(2)}`);
    // Measured mean 0.02-0.46 levels (max 1 for grey, up to 39 at a few sharp edges of the
    // photos: the reduced IDCT is a DCT-domain low-pass, not a box filter).
    expect(mean).toBeLessThan(0.8);
  });
});

describe('layouts only the test encoder makes: 4:2:2, 4:4:0, 4:1:1, one scan per component', () => {
  // A 203x141 corner of chelsea.jpg: odd sizes exercise the partial MCUs at both edges.
  const src = ((): RgbImage => {
    const c = jpegJs(read('images/chelsea.jpg'));
    const w = 203;
    const h = 141;
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) data.set(c.data.subarray((y + 60) * c.width * 3 + 100 * 3, (y + 60) * c.width * 3 + (100 + w) * 3), y * w * 3);
    return { width: w, height: h, data };
  })();
  const cases: Array<[string, [number, number][], { interleaved: boolean; restart: number }]> = [
    ['4:2:2 interleaved', [[2, 1], [1, 1], [1, 1]], { interleaved: true, restart: 0 }],
    ['4:4:0 interleaved, restart 3', [[1, 2], [1, 1], [1, 1]], { interleaved: true, restart: 3 }],
    ['4:1:1 interleaved', [[4, 1], [1, 1], [1, 1]], { interleaved: true, restart: 0 }],
    ['4:2:0 one scan per component, restart 7', [[2, 2], [1, 1], [1, 1]], { interleaved: false, restart: 7 }],
    ['4:2:2 one scan per component', [[2, 1], [1, 1], [1, 1]], { interleaved: false, restart: 0 }],
  ];
  it.each(cases)('%s', (_name, sampling, opts) => {
    const bytes = encodeBaseline(src, sampling, opts);
    const ref = jpegJs(bytes);
    // The encoder itself is sane: jpeg-js reads back roughly the source.
    expect(diff(ref.data, src.data).mean).toBeLessThan(6);
    const one = diff(scaled(bytes, 1).data, ref.data);
    expect(one.max).toBeLessThanOrEqual(4);
    expect(one.mean).toBeLessThan(0.3);
    const means: string[] = [];
    for (const denom of [2, 4, 8] as const) {
      const out = scaled(bytes, denom);
      expect([out.width, out.height]).toEqual([Math.ceil(203 / denom), Math.ceil(141 / denom)]);
      const { mean } = diff(out.data, boxDownscale(ref, denom).data);
      means.push(`1/${denom} ${mean.toFixed(2)}`);
      expect(mean).toBeLessThan(0.8);
    }
    console.log(`${_name}: 1/1 vs jpeg-js max ${one.max} mean ${one.mean.toFixed(3)}; vs box: ${means.join(', ')}`);
  });
});

describe('jpegScaleFor', () => {
  it('picks the largest 1/8, 1/4, 1/2 keeping the shorter side >= the minimum', () => {
    expect(jpegScaleFor(4032, 3024, 256)).toBe(8); // 504 x 378
    expect(jpegScaleFor(3024, 4032, 256)).toBe(8);
    expect(jpegScaleFor(2048, 1536, 256)).toBe(4); // 1/8 would be 192
    expect(jpegScaleFor(1024, 768, 256)).toBe(2);
    expect(jpegScaleFor(2047, 2047, 256)).toBe(8); // ceil(2047 / 8) = 256 still fits
    expect(jpegScaleFor(2040, 2040, 256)).toBe(4); // 255 would not
    expect(jpegScaleFor(600, 400, 256)).toBe(1);
    expect(jpegScaleFor(4032, 3024, undefined)).toBe(1);
  });
});

describe('12 MP photo through the pipeline (the requirement)', () => {
  let bytes: Uint8Array;
  let tiled: Uint8Array;

  beforeAll(() => {
    // coffee.jpg (600x400, a real photo) bilinearly upscaled to a phone's 4032x3024, then
    // encoded by jpeg-js at quality 90 (baseline 4:4:4; jpeg-js's encoder has no 4:2:0).
    bytes = encodeJpeg(bilinearResize(jpegJs(read('photos/coffee.jpg')), 4032, 3024), 90);
    // The harder case: chelsea.jpg's fur at native scale, mirror-tiled to 4032x3024.
    tiled = encodeJpeg(mirrorTile(jpegJs(read('images/chelsea.jpg')), 4032, 3024), 90);
  });

  it('the 224x224 crop from the 1/8 decode of a detailed 12 MP image is close to the full decode', () => {
    vi.clearAllMocks();
    const full = decodeImage(tiled, BIG_LIMITS);
    const small = decodeImage(tiled, { ...BIG_LIMITS, minShorterSide: 256 });
    expect(jpegJsDecode).toHaveBeenCalledTimes(1);
    expect([small.width, small.height]).toEqual([504, 378]);
    const { max, mean } = diff(resizeCropU8(small, SPEC), resizeCropU8(full, SPEC));
    console.log(`12 MP tiled chelsea crop 224x224x3, 1/8 decode vs full jpeg-js decode: max ${max} mean ${mean.toFixed(3)} levels`);
    // Measured: max 9, mean 0.97 levels.
    expect(mean).toBeLessThan(1.5);
    expect(max).toBeLessThanOrEqual(16);
  });

  it('the 224x224 crop from the 1/8 decode is within a few levels of the full decode', () => {
    vi.clearAllMocks(); // beforeAll's decodes
    const full = decodeImage(bytes, BIG_LIMITS);
    expect(jpegJsDecode).toHaveBeenCalledTimes(1);
    vi.clearAllMocks();
    const small = decodeImage(bytes, { ...BIG_LIMITS, minShorterSide: 256 });
    expect(jpegJsDecode).not.toHaveBeenCalled();
    expect([full.width, full.height]).toEqual([4032, 3024]);
    expect([small.width, small.height]).toEqual([504, 378]);

    const { max, mean } = diff(resizeCropU8(small, SPEC), resizeCropU8(full, SPEC));
    console.log(`12 MP crop 224x224x3, 1/8 decode vs full jpeg-js decode: max ${max} mean ${mean.toFixed(3)} levels`);
    // Measured: max 9, mean 0.41 levels. Bounds leave some headroom.
    expect(mean).toBeLessThan(1);
    expect(max).toBeLessThanOrEqual(14);
  });

  it('is several times faster and never allocates the full-size image', () => {
    const time = (image: Uint8Array, limits: DecodeLimits, runs: number): number => {
      let best = Infinity;
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        decodeImage(image, limits);
        best = Math.min(best, performance.now() - t);
      }
      return best;
    };
    for (const [name, image] of [['upscaled coffee', bytes], ['tiled chelsea', tiled]] as const) {
      vi.clearAllMocks();
      const fullMs = time(image, BIG_LIMITS, 2);
      expect(jpegJsDecode).toHaveBeenCalledTimes(2);
      vi.clearAllMocks();
      const scaledMs = time(image, { ...BIG_LIMITS, minShorterSide: 256 }, 3);
      // jpeg-js is where the full-size buffers come from; the scaled path must not call it.
      expect(jpegJsDecode).not.toHaveBeenCalled();
      console.log(`12 MP ${name} decodeImage: full ${fullMs.toFixed(0)} ms, 1/8 ${scaledMs.toFixed(0)} ms, ratio ${(fullMs / scaledMs).toFixed(1)}x`);
      // Measured: ~20x on the smooth image, ~9x on the detailed one (more AC codes to skip).
      expect(scaledMs * 3).toBeLessThan(fullMs);
    }
  });

  it('fits a Worker-sized memory budget that the full decode does not', () => {
    // jpeg-js accounts ~20 bytes a pixel for 4:4:4: a 12 MP decode needs ~245 MB, over 128.
    expect(() => decodeImage(bytes, { maxPixels: 16_000_000, maxMemoryMB: 128 })).toThrow(ApiError);
    const small = decodeImage(bytes, { maxPixels: 16_000_000, maxMemoryMB: 128, minShorterSide: 256 });
    expect([small.width, small.height]).toEqual([504, 378]);
  });
});

describe('real 4:2:0 photos through the pipeline at 1/2', () => {
  // The photos are too small for 1/2 at 256, so a proportionally smaller spec: 128 -> 112.
  const spec: PreprocessSpec = { resizeShorter: 128, cropHeight: 112, cropWidth: 112, ...IMAGENET };
  it.each(['images/chelsea.jpg', 'photos/coffee.jpg', 'photos/rocket.jpg'])('%s', (file) => {
    const bytes = read(file);
    const full = decodeImage(bytes, BIG_LIMITS);
    const half = decodeImage(bytes, { ...BIG_LIMITS, minShorterSide: 128 });
    expect(half.width).toBe(Math.ceil(full.width / 2));
    const { max, mean } = diff(resizeCropU8(half, spec), resizeCropU8(full, spec));
    console.log(`${file} crop 112x112x3, 1/2 decode vs full: max ${max} mean ${mean.toFixed(3)}`);
    // Measured: chelsea (fur, fine detail) max 22 mean 2.35; coffee max 12 mean 0.61; rocket
    // max 32 mean 0.68. Two different low-pass chains differ most on texture near Nyquist.
    expect(mean).toBeLessThan(3);
  });
});

describe('decodeImage with minShorterSide', () => {
  it('applies the EXIF orientation after scaling', () => {
    // Stored 300x451 with orientation 6: upright it is 451x300, at 1/2 226x150.
    const bytes = read('photos/chelsea-exif6.jpg');
    const header = readJpegHeader(bytes);
    expect(header.orientation).toBe(6);
    const stored = scaled(bytes, 2);
    // Compared as stored: after rotating, the odd 451 side would shift the 2x2 box grid.
    expect(diff(stored.data, boxDownscale(jpegJs(bytes), 2).data).mean).toBeLessThan(1);
    vi.clearAllMocks();
    const half = decodeImage(bytes, { ...BIG_LIMITS, minShorterSide: 100 });
    expect(jpegJsDecode).not.toHaveBeenCalled();
    expect([half.width, half.height]).toEqual([226, 150]);
    expect(half.data).toEqual(applyOrientation(stored, 6).data);
  });

  it('decodes at full size when the image is already small', () => {
    const bytes = read('photos/coffee.jpg');
    const out = decodeImage(bytes, { ...BIG_LIMITS, minShorterSide: 256 });
    expect([out.width, out.height]).toEqual([600, 400]);
    expect(jpegJsDecode).toHaveBeenCalledTimes(1);
  });

  it.each(['images/jpeg-progressive.jpg', 'images/jpeg-cmyk.jpg', 'images/jpeg-rgb-adobe.jpg'])(
    '%s falls back to jpeg-js at full size',
    (file) => {
      const bytes = read(file);
      // 96x64: 1/8 would keep a shorter side of 8, so the scaled decoder is asked first.
      expect(decodeJpegScaled(bytes, readJpegHeader(bytes), 8)).toBeUndefined();
      const out = decodeImage(bytes, { ...BIG_LIMITS, minShorterSide: 8 });
      expect(jpegJsDecode).toHaveBeenCalledTimes(1);
      expect([out.width, out.height]).toEqual([96, 64]);
      expect(out.data).toEqual(decodeImage(bytes, BIG_LIMITS).data);
    },
  );

  it('still refuses a truncated baseline JPEG with 422', () => {
    const bytes = read('images/chelsea.jpg');
    const cut = bytes.subarray(0, Math.floor(bytes.length * 0.6));
    expect(decodeJpegScaled(cut, readJpegHeader(cut), 2)).toBeUndefined();
    let status = 0;
    try {
      decodeImage(cut, { ...BIG_LIMITS, minShorterSide: 100 });
    } catch (err) {
      if (err instanceof ApiError) status = err.status;
    }
    expect(status).toBe(422);
  });
});

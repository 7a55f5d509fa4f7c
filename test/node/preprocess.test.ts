/**
 * Preprocessing: TypeScript reference vs real Pillow (goldens from
 * scripts/make-preprocess-golden.py), wasm kernel vs reference, and the kernel's contract
 * (spec honoured, batch offsets, bounded memory). The kernel is loaded the way Node can:
 * compiled here from build/preprocess.wasm (`npm run build:wasm`, done here if missing).
 */
import { execSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { PreprocessKernel } from '../../wasm/preprocess/index.js';
import type { PreprocessSpec } from '../../src/models/manifest.js';
import { IMAGENET_PREPROCESS } from '../../src/models/manifest.js';
import {
  computeGeometry,
  normalizeU8,
  preprocessReference,
  resizeCropU8,
  roundHalfEven,
} from '../../src/preprocess/reference.js';
import type { RgbImage } from '../../src/preprocess/types.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GOLDEN = `${ROOT}test/fixtures/golden/`;
const WASM = `${ROOT}wasm/preprocess/build/preprocess.wasm`;

interface GoldenCase {
  name: string;
  source: { kind: 'rgb'; file: string; sha256: string } | { kind: 'pattern'; seed: number; sha256: string };
  width: number;
  height: number;
  spec: { resizeShorter: number; cropHeight: number; cropWidth: number };
  resized: [number, number];
  offset: [number, number];
  /** Present when the source is the reduced decode of a larger image. */
  reduction?: { fullWidth: number; fullHeight: number; scale: number };
  golden: string;
  why: string;
}

interface GoldenIndex {
  pillow: string;
  cases: GoldenCase[];
}

/** The golden script's `pattern`, restated bit for bit (sha256 in index.json guards it). */
function pattern(width: number, height: number, seed: number): Uint8Array {
  const buf = new Uint8Array(width * height * 3);
  const wd = Math.max(width - 1, 1);
  const hd = Math.max(height - 1, 1);
  const s = Math.imul(seed, 2246822519 | 0) >>> 0;
  let i = 0;
  for (let y = 0; y < height; y++) {
    const ry = Math.floor((y * 128) / hd);
    const yh = (Math.imul(y, 668265263) + s) >>> 0;
    for (let x = 0; x < width; x++) {
      let h = (Math.imul(x, 374761393) + yh) >>> 0;
      h = Math.imul(h ^ (h >>> 13), 1274126177) >>> 0;
      h = (h ^ (h >>> 16)) >>> 0;
      buf[i] = (Math.floor((x * 255) / wd) + ry) & 255;
      buf[i + 1] = (Math.floor(x / 3) + Math.floor(y / 5)) & 1 ? 255 : 0;
      buf[i + 2] = h & 255;
      i += 3;
    }
  }
  return buf;
}

/** Small seeded PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomImage(rand: () => number, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  // Mix smooth areas and noise so both rounding directions and the 0/255 clamps are hit.
  const smooth = rand() < 0.5;
  for (let i = 0; i < data.length; i++) {
    data[i] = smooth ? ((i / 3) * 7 + (i % 3) * 60) & 255 : Math.floor(rand() * 256);
  }
  return { width, height, data };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

function withNorm(s: Pick<PreprocessSpec, 'resizeShorter' | 'cropHeight' | 'cropWidth'>): PreprocessSpec {
  return { ...s, mean: IMAGENET_PREPROCESS.mean, std: IMAGENET_PREPROCESS.std };
}

function tensorSize(spec: PreprocessSpec): number {
  return 3 * spec.cropHeight * spec.cropWidth;
}

const index = JSON.parse(readFileSync(`${GOLDEN}index.json`, 'utf8')) as GoldenIndex;

function loadSource(c: GoldenCase): RgbImage {
  const data =
    c.source.kind === 'rgb' ? new Uint8Array(readFileSync(GOLDEN + c.source.file)) : pattern(c.width, c.height, c.source.seed);
  return { width: c.width, height: c.height, data };
}

// The project is typed for workerd, where a Module cannot be compiled from bytes; Node can.
const NodeWasmModule = WebAssembly.Module as unknown as new (bytes: Uint8Array) => WebAssembly.Module;

let kernel: PreprocessKernel;
let wasmModule: WebAssembly.Module;

beforeAll(() => {
  if (!existsSync(WASM)) execSync('npm run build:wasm', { cwd: ROOT, stdio: 'inherit' });
  wasmModule = new NodeWasmModule(readFileSync(WASM));
  kernel = PreprocessKernel.fromModule(wasmModule);
});

describe('geometry', () => {
  it('rounds crop offsets half to even like Python 3', () => {
    expect([0.5, 1.5, 2.5, 16.5, 17.5, 18.5, 3].map(roundHalfEven)).toEqual([0, 2, 2, 16, 18, 18, 3]);
  });

  it('matches torchvision on every golden case', () => {
    for (const c of index.cases) {
      const g = computeGeometry(c.reduction?.fullWidth ?? c.width, c.reduction?.fullHeight ?? c.height, withNorm(c.spec));
      expect([g.resizedWidth, g.resizedHeight, g.left, g.top], c.name).toEqual([...c.resized, ...c.offset]);
    }
  });
});

describe('reference vs Pillow golden', () => {
  const diffs: Record<string, number> = {};

  for (const c of index.cases) {
    it(`${c.name}: ${c.why}`, () => {
      const img = loadSource(c);
      expect(createHash('sha256').update(img.data).digest('hex'), 'source bytes').toBe(c.source.sha256);
      const golden = new Uint8Array(readFileSync(GOLDEN + c.golden));
      const u8 = resizeCropU8(img, withNorm(c.spec), c.reduction);
      const d = maxAbsDiff(u8, golden);
      diffs[c.name] = d;
      expect(d).toBeLessThanOrEqual(1);
    });
  }

  it('reports the max difference', () => {
    console.log(`reference vs Pillow ${index.pillow}, max |diff| per case (8-bit levels):`, diffs);
  });
});

describe('kernel vs reference', () => {
  it('is bit-identical on every golden case, and within 1 level of Pillow', () => {
    let worst = 0;
    for (const c of index.cases) {
      const img = loadSource(c);
      const spec = withNorm(c.spec);
      const n = tensorSize(spec);
      const ref = new Float32Array(n);
      const got = new Float32Array(n);
      preprocessReference(img, spec, ref, 0, c.reduction);
      kernel.run(img, spec, got, 0, c.reduction);
      const d = maxAbsDiff(got, ref);
      worst = Math.max(worst, d);
      expect(d, c.name).toBeLessThanOrEqual(1e-6);

      // Straight from Pillow's bytes through the float formula: one 8-bit level is 1/255/std.
      const pil = new Float32Array(n);
      normalizeU8(new Uint8Array(readFileSync(GOLDEN + c.golden)), spec.cropHeight, spec.cropWidth, spec, pil, 0);
      expect(maxAbsDiff(got, pil), c.name).toBeLessThanOrEqual(1 / 255 / 0.224 + 1e-6);
    }
    console.log(`kernel vs reference on golden cases: max |diff| = ${worst}`);
  });

  it('is bit-identical on random images and specs (SIMD tails, padding, chunking)', () => {
    const rand = prng(20240611);
    let worst = 0;
    const cases = 120;
    for (let t = 0; t < cases; t++) {
      // Sizes include 1, primes and widths that are not multiples of 4, 8 or 16.
      const width = 1 + Math.floor(rand() * (t % 10 === 0 ? 1500 : 400));
      const height = 1 + Math.floor(rand() * (t % 10 === 5 ? 1500 : 400));
      const img = randomImage(rand, width, height);
      const spec: PreprocessSpec =
        t % 4 === 0
          ? IMAGENET_PREPROCESS
          : {
              resizeShorter: 1 + Math.floor(rand() * 300),
              cropHeight: 1 + Math.floor(rand() * 130),
              cropWidth: 1 + Math.floor(rand() * 130),
              mean: [rand(), rand(), rand()],
              std: [0.05 + rand(), 0.05 + rand(), 0.05 + rand()],
            };
      const n = tensorSize(spec);
      const ref = new Float32Array(n);
      const got = new Float32Array(n);
      preprocessReference(img, spec, ref);
      kernel.run(img, spec, got, 0);
      const d = maxAbsDiff(got, ref);
      worst = Math.max(worst, d);
      expect(d, `${width}x${height} ${JSON.stringify(spec)}`).toBeLessThanOrEqual(1e-6);
    }
    console.log(`kernel vs reference on ${cases} random cases: max |diff| = ${worst}`);
  });

  it('is bit-identical on random reduced decodes (any scale, odd full sizes)', () => {
    const rand = prng(20261202);
    for (let t = 0; t < 60; t++) {
      const scale = [1, 2, 4, 8][t % 4] as number;
      const fullWidth = 1 + Math.floor(rand() * 2500);
      const fullHeight = 1 + Math.floor(rand() * 2500);
      const reduction = { fullWidth, fullHeight, scale };
      const img = randomImage(rand, Math.ceil(fullWidth / scale), Math.ceil(fullHeight / scale));
      const n = tensorSize(IMAGENET_PREPROCESS);
      const ref = new Float32Array(n);
      const got = new Float32Array(n);
      preprocessReference(img, IMAGENET_PREPROCESS, ref, 0, reduction);
      kernel.run(img, IMAGENET_PREPROCESS, got, 0, reduction);
      expect(maxAbsDiff(got, ref), JSON.stringify(reduction)).toBeLessThanOrEqual(1e-6);
    }
  });

  it('streams: rows written in any grouping give the same output, unused rows are skipped', () => {
    const rand = prng(99);
    for (let t = 0; t < 12; t++) {
      const img = randomImage(rand, 1 + Math.floor(rand() * 900), 1 + Math.floor(rand() * 900));
      const n = tensorSize(IMAGENET_PREPROCESS);
      const whole = new Float32Array(n);
      kernel.run(img, IMAGENET_PREPROCESS, whole, 0);
      const streamed = new Float32Array(n);
      const job = kernel.begin(img.width, img.height, IMAGENET_PREPROCESS);
      const rowBytes = img.width * 3;
      for (let y = 0; y < img.height; ) {
        const count = Math.min(img.height - y, 1 + Math.floor(rand() * 40));
        // A fresh buffer each call, as a decoder's reused row band would be.
        job.write(img.data.slice(y * rowBytes, (y + count) * rowBytes), y, count);
        y += count;
      }
      job.finish(streamed, 0);
      expect(maxAbsDiff(streamed, whole)).toBe(0);
    }
  });

  it('refuses rows out of order, a short image, and a job abandoned for another', () => {
    const img = randomImage(prng(5), 300, 400);
    const rowBytes = img.width * 3;
    const out = new Float32Array(tensorSize(IMAGENET_PREPROCESS));
    const skip = kernel.begin(300, 400, IMAGENET_PREPROCESS);
    skip.write(img.data.subarray(0, rowBytes), 0, 1);
    expect(() => skip.write(img.data.subarray(2 * rowBytes, 3 * rowBytes), 2, 1)).toThrow(/out of order/);
    const short = kernel.begin(300, 400, IMAGENET_PREPROCESS);
    short.write(img.data.subarray(0, 100 * rowBytes), 0, 100);
    expect(() => short.finish(out, 0)).toThrow(/ended at row 100/);
    const first = kernel.begin(300, 400, IMAGENET_PREPROCESS);
    kernel.begin(300, 400, IMAGENET_PREPROCESS);
    expect(() => first.write(img.data, 0, 400)).toThrow(/another image/);
    expect(() => kernel.begin(300, 400, IMAGENET_PREPROCESS, { fullWidth: 1200, fullHeight: 1600, scale: 2 })).toThrow(/is not 1200x1600 at 1\/2/);
  });

  it('is bit-identical on a 12 MP photo-sized input (many input chunks)', () => {
    const img = randomImage(prng(7), 4032, 3024);
    const n = tensorSize(IMAGENET_PREPROCESS);
    const ref = new Float32Array(n);
    const got = new Float32Array(n);
    preprocessReference(img, IMAGENET_PREPROCESS, ref);
    kernel.run(img, IMAGENET_PREPROCESS, got, 0);
    expect(maxAbsDiff(got, ref)).toBeLessThanOrEqual(1e-6);
  });
});

describe('kernel contract', () => {
  it('crops the center and lays the result out CHW with the given mean and std', () => {
    // resizeShorter = the short side: no resampling, so the output is the source crop itself.
    const width = 10;
    const height = 8;
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = y * 20 + x * 2 + c * 90;
    }
    const spec: PreprocessSpec = { resizeShorter: 8, cropHeight: 4, cropWidth: 6, mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 2] };
    const out = new Float32Array(tensorSize(spec));
    kernel.run({ width, height, data }, spec, out, 0);
    // left = round((10 - 6) / 2) = 2, top = round((8 - 4) / 2) = 2.
    for (let c = 0; c < 3; c++) {
      const m = Math.fround(spec.mean[c] as number);
      const s = Math.fround(spec.std[c] as number);
      for (let y = 0; y < 4; y++) {
        for (let x = 0; x < 6; x++) {
          const v = data[((y + 2) * width + x + 2) * 3 + c] as number;
          expect(out[c * 24 + y * 6 + x]).toBe(Math.fround(Math.fround(Math.fround(v / 255) - m) / s));
        }
      }
    }
  });

  it('honours every spec parameter', () => {
    const img = randomImage(prng(3), 500, 375);
    const base = IMAGENET_PREPROCESS;
    const run = (spec: PreprocessSpec): Float32Array => {
      const out = new Float32Array(tensorSize(spec));
      kernel.run(img, spec, out, 0);
      return out;
    };
    const a = run(base);
    expect(a.length).toBe(3 * 224 * 224);

    // mean 0, std 1: the output is u8 / 255 of the reference's crop, channel planes in order.
    const plain = run({ ...base, mean: [0, 0, 0], std: [1, 1, 1] });
    const u8 = resizeCropU8(img, base);
    const plane = 224 * 224;
    let wrong = 0;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) if (plain[c * plane + i] !== Math.fround((u8[i * 3 + c] as number) / 255)) wrong++;
    }
    expect(wrong).toBe(0);
    // mean and std enter per channel: R's mean and B's std changed, G untouched.
    const shifted = run({ ...base, mean: [0.5, 0.456, 0.406], std: [0.229, 0.224, 0.45] });
    let sameR = 0;
    let changedG = 0;
    let sameB = 0;
    for (let i = 0; i < plane; i++) {
      if (shifted[i] === a[i]) sameR++;
      if (shifted[plane + i] !== a[plane + i]) changedG++;
      if (shifted[2 * plane + i] === a[2 * plane + i]) sameB++;
    }
    expect([sameR, changedG, sameB]).toEqual([0, 0, 0]);

    // Different resize and a non-square crop: the output shape follows and matches the reference.
    const small: PreprocessSpec = { ...base, resizeShorter: 160, cropHeight: 112, cropWidth: 128 };
    const b = run(small);
    expect(b.length).toBe(3 * 112 * 128);
    const ref = new Float32Array(b.length);
    preprocessReference(img, small, ref);
    expect(maxAbsDiff(b, ref)).toBe(0);
    // A different resize with the same crop changes the pixels.
    const c = run({ ...base, resizeShorter: 300 });
    expect(maxAbsDiff(c, a)).toBeGreaterThan(0.1);
  });

  it('writes into a batch tensor at any offset and nowhere else', () => {
    const spec = IMAGENET_PREPROCESS;
    const n = tensorSize(spec);
    const imgs = [randomImage(prng(11), 640, 480), randomImage(prng(12), 333, 501), randomImage(prng(13), 257, 256)];
    const batch = new Float32Array(imgs.length * n + 2).fill(-999);
    // Offsets 1, n + 1, ...: not a multiple of 4 floats, to rule out alignment assumptions.
    imgs.forEach((img, i) => kernel.run(img, spec, batch, 1 + i * n));
    expect(batch[0]).toBe(-999);
    expect(batch[batch.length - 1]).toBe(-999);
    imgs.forEach((img, i) => {
      const ref = new Float32Array(n);
      preprocessReference(img, spec, ref);
      expect(maxAbsDiff(batch.subarray(1 + i * n, 1 + (i + 1) * n), ref)).toBe(0);
    });
    expect(() => kernel.run(imgs[0] as RgbImage, spec, batch, imgs.length * n)).toThrow(RangeError);
    expect(() => kernel.run(imgs[0] as RgbImage, spec, batch, -1)).toThrow(RangeError);
  });

  it('rejects bad input and keeps working afterwards', () => {
    const spec = IMAGENET_PREPROCESS;
    const out = new Float32Array(tensorSize(spec));
    expect(() => kernel.run({ width: 10, height: 10, data: new Uint8Array(299) }, spec, out, 0)).toThrow(RangeError);
    expect(() => kernel.run({ width: 0, height: 10, data: new Uint8Array(0) }, spec, out, 0)).toThrow(RangeError);
    expect(() => kernel.run({ width: 2, height: 2, data: new Uint8Array(12) }, { ...spec, std: [1, 0, 1] }, out, 0)).toThrow(
      RangeError,
    );
    const img = randomImage(prng(5), 64, 48);
    const ref = new Float32Array(out.length);
    preprocessReference(img, spec, ref);
    kernel.run(img, spec, out, 0);
    expect(maxAbsDiff(out, ref)).toBe(0);
  });

  it('reuses its memory: grows only for an image larger than any before', () => {
    const k = PreprocessKernel.fromModule(wasmModule);
    const spec = IMAGENET_PREPROCESS;
    const out = new Float32Array(tensorSize(spec));
    const rand = prng(99);
    const sizes: Array<[number, number]> = [];
    for (let i = 0; i < 12; i++) sizes.push([1 + Math.floor(rand() * 1200), 1 + Math.floor(rand() * 1200)]);
    const images = sizes.map(([w, h]) => randomImage(rand, w, h));
    for (const img of images) k.run(img, spec, out, 0);
    const settled = k.memoryBytes;
    for (let round = 0; round < 5; round++) for (const img of images) k.run(img, spec, out, 0);
    expect(k.memoryBytes).toBe(settled);

    // A 12 MP photo is streamed through in row chunks: memory stays far below the image size.
    const big = randomImage(prng(1), 4032, 3024);
    k.run(big, spec, out, 0);
    const afterBig = k.memoryBytes;
    expect(afterBig).toBeLessThan(8 * 1024 * 1024);
    for (const img of images) k.run(img, spec, out, 0);
    k.run(big, spec, out, 0);
    expect(k.memoryBytes).toBe(afterBig);
  });
});

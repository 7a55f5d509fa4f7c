/**
 * From upload bytes to the model input (src/image planDecode + src/pipeline prepareInput):
 * the scale each image is decoded at, its memory, streaming vs collecting, EXIF orientation
 * at reduced scale, and the crop of a big photo decoded at reduced scale against the crop of
 * its exact full decode (the reference's pixels, see test/node/jpeg-exact.test.ts).
 */
import { readFileSync } from 'node:fs';
import { encode as jpegJsEncode } from 'jpeg-js';
import { zlibSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors';
import { applyOrientation, decodeImage, decodePlanned, planDecode, type RgbImage } from '../../src/image';
import { IMAGENET_PREPROCESS } from '../../src/models/manifest';
import { planFor, prepareInput } from '../../src/pipeline/prepare';
import { normalizeU8, resizeCropU8 } from '../../src/preprocess/reference';
import type { PreprocessKernel } from '../../wasm/preprocess/index';
import { loadKernel } from '../../models/src/kernel';
import { pngFile } from '../../models/src/png';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string): Uint8Array => new Uint8Array(readFileSync(new URL(`test/fixtures/${path}`, ROOT)));
const SPEC = IMAGENET_PREPROCESS;
const WORKER = { maxPixels: 16_000_000, maxMemoryMB: 32 };
const N = 3 * SPEC.cropHeight * SPEC.cropWidth;

let kernel: PreprocessKernel;
beforeAll(() => {
  kernel = loadKernel();
});

async function input(bytes: Uint8Array): Promise<{ tensor: Float32Array; plan: ReturnType<typeof planFor> }> {
  const plan = planFor(bytes, SPEC, WORKER);
  const tensor = new Float32Array(N);
  await prepareInput(bytes, plan, SPEC, WORKER, kernel, tensor, 0);
  return { tensor, plan };
}

/** The reference's model input: full decode (bit-exact with Pillow), upright, then the resize. */
function referenceInput(bytes: Uint8Array): { u8: Uint8Array; tensor: Float32Array } {
  const full = decodeImage(bytes, { maxPixels: 1e9 });
  const u8 = resizeCropU8(full, SPEC);
  const tensor = new Float32Array(N);
  normalizeU8(u8, SPEC.cropHeight, SPEC.cropWidth, SPEC, tensor, 0);
  return { u8, tensor };
}

/** The 8-bit crop back from a normalized tensor (exact: one level is far above float error). */
function toU8(t: Float32Array): Uint8Array {
  const plane = SPEC.cropHeight * SPEC.cropWidth;
  const u8 = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) u8[i * 3 + c] = Math.round((t[c * plane + i]! * SPEC.std[c]! + SPEC.mean[c]!) * 255);
  }
  return u8;
}

function stats(a: Uint8Array, b: Uint8Array): { mean: number; p999: number; max: number } {
  const d = Array.from(a, (v, i) => Math.abs(v - b[i]!)).sort((x, y) => x - y);
  return { mean: d.reduce((s, x) => s + x, 0) / d.length, p999: d[Math.floor(d.length * 0.999)]!, max: d[d.length - 1]! };
}

function encodeJpeg(img: RgbImage, quality: number): Uint8Array {
  const rgba = new Uint8Array(img.width * img.height * 4);
  for (let i = 0, j = 0; i < img.data.length; i += 3, j += 4) {
    rgba[j] = img.data[i]!;
    rgba[j + 1] = img.data[i + 1]!;
    rgba[j + 2] = img.data[i + 2]!;
    rgba[j + 3] = 255;
  }
  return new Uint8Array(jpegJsEncode({ data: rgba, width: img.width, height: img.height }, quality).data);
}

/** `img` tiled to w x h, every other tile mirrored: a big image with a real photo's detail at native scale. */
function mirrorTile(img: RgbImage, w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  const fold = (v: number, n: number): number => (Math.floor(v / n) % 2 === 0 ? v % n : n - 1 - (v % n));
  for (let y = 0; y < h; y++) {
    const sy = fold(y, img.height);
    for (let x = 0; x < w; x++) data.set(img.data.subarray((sy * img.width + fold(x, img.width)) * 3, (sy * img.width + fold(x, img.width)) * 3 + 3), (y * w + x) * 3);
  }
  return { width: w, height: h, data };
}

describe('planDecode', () => {
  it('decodes at full size what the resize would not reduce at least 2x, reduced scale above', async () => {
    const coffee = read('photos/coffee.jpg'); // 600x400
    expect(planFor(coffee, SPEC, WORKER)).toMatchObject({ scale: 1, width: 600, height: 400, streams: true, path: 'jpeg' });
    expect(planFor(coffee, SPEC, WORKER).reduction).toBeUndefined();
    const png = read('photos/camera.png');
    expect(planFor(png, SPEC, WORKER)).toMatchObject({ scale: 1, streams: true, path: 'png' });
  });

  it('gives the upright full size to the resize of a reduced, rotated photo', async () => {
    // chelsea-exif6.jpg is stored 300x451 with orientation 6, upright 451x300; a 128 target
    // makes 1/2 (a shorter side of 150 >= 2 x 64 would too, but 2 x 128 = 256 > 150: so 1).
    const bytes = read('photos/chelsea-exif6.jpg');
    const plan = planDecode(bytes, WORKER, { target: 64 });
    expect(plan).toMatchObject({ scale: 2, width: 150, height: 226, streams: false });
    expect(plan.reduction).toEqual({ fullWidth: 451, fullHeight: 300, scale: 2 });
    // Not streamed: the collected image and its turned copy are in the memory figure.
    expect(plan.memoryBytes).toBeGreaterThan(2 * 150 * 226 * 3);
  });

  it('refuses with 413 what needs more memory than MAX_DECODE_MB, naming the sizes', async () => {
    const bytes = read('photos/coffee.jpg');
    let err: unknown;
    try {
      planDecode(bytes, { maxPixels: 1e9, maxMemoryMB: 0.01 }, { collect: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(413);
    expect((err as ApiError).message).toMatch(/JPEG of 600x400 needs [\d.]+ MB to decode, over the limit of 0.01 MB/);
  });
});

describe('prepareInput', () => {
  it('streams rows into the resize with exactly the result of decoding whole first', async () => {
    for (const file of ['photos/coffee.jpg', 'photos/astronaut.jpg', 'photos/camera.png', 'images/jpeg-progressive.jpg', 'images/png-rgb8-adam7.png']) {
      const bytes = read(file);
      const streamed = await input(bytes);
      expect(streamed.plan.streams, file).toBe(true);
      const whole = new Float32Array(N);
      kernel.run(decodeImage(bytes, { maxPixels: 1e9 }), SPEC, whole, 0);
      expect(streamed.tensor, file).toEqual(whole);
      // And the full-scale result is the reference's, bit for bit.
      expect(streamed.tensor, file).toEqual(referenceInput(bytes).tensor);
    }
  });

  it('applies EXIF orientation: a photo stored rotated gives the upright photo\'s input', async () => {
    const bytes = read('photos/chelsea-exif6.jpg');
    const rotated = await input(bytes);
    expect(rotated.plan.streams).toBe(false);
    expect(rotated.tensor).toEqual(referenceInput(bytes).tensor);
    // The same photo stored upright (another encoding of it) gives nearly the same input.
    const upright = decodeImage(read('photos/chelsea-upright.jpg'), { maxPixels: 1e9 });
    expect([upright.width, upright.height]).toEqual([451, 300]);
    expect(stats(toU8(rotated.tensor), resizeCropU8(upright, SPEC)).mean).toBeLessThan(2);
  });

  it('orients after scaling: the reduced decode turned upright is the upright reduced input', async () => {
    const bytes = read('photos/chelsea-exif6.jpg');
    const plan = planDecode(bytes, WORKER, { target: 64 });
    const spec = { ...SPEC, resizeShorter: 64, cropWidth: 56, cropHeight: 56 };
    const got = new Float32Array(3 * 56 * 56);
    await prepareInput(bytes, plan, spec, WORKER, kernel, got, 0);
    const stored = await decodePlanned(bytes, { ...plan, header: { ...plan.header, orientation: 1 } }, WORKER);
    const want = new Float32Array(3 * 56 * 56);
    kernel.run(applyOrientation(stored, 6), spec, want, 0, plan.reduction);
    expect(got).toEqual(want);
  });
});

describe('a 12 MP photo', () => {
  let tiled: Uint8Array;
  beforeAll(() => {
    // chelsea's fur at native scale, mirror-tiled to a phone's 4032x3024 (baseline 4:4:4, q90).
    tiled = encodeJpeg(mirrorTile(decodeImage(read('photos/chelsea.jpg'), { maxPixels: 1e9 }), 4032, 3024), 90);
  });

  it('is decoded at reduced scale within the decode budget, streamed', async () => {
    const plan = planFor(tiled, SPEC, WORKER);
    expect(plan).toMatchObject({ scale: 4, width: 1008, height: 756, streams: true, path: 'jpeg@1/4' });
    expect(plan.memoryBytes).toBeLessThan(8 * 2 ** 20);
  });

  it('gives a crop within mean 0.5 and 99.9% within 8 levels of the exact full decode', async () => {
    const got = toU8((await input(tiled)).tensor);
    const ref = referenceInput(tiled).u8;
    const s = stats(got, ref);
    console.log(`12 MP tiled chelsea, 1/4 decode vs exact full decode, 224 crop: mean ${s.mean.toFixed(3)} p99.9 ${s.p999} max ${s.max}`);
    expect(s.mean).toBeLessThanOrEqual(0.5);
    expect(s.p999).toBeLessThanOrEqual(8);
  });

  it('at 1/8 (a resize target of 128, so that 12 MP reaches it) the crop meets the same targets', async () => {
    const spec = { ...SPEC, resizeShorter: 128, cropWidth: 112, cropHeight: 112 };
    const bytes = encodeJpeg(mirrorTile(decodeImage(read('photos/coffee.jpg'), { maxPixels: 1e9 }), 4096, 3072), 85);
    const plan = planFor(bytes, spec, WORKER);
    expect(plan).toMatchObject({ scale: 8, width: 512, height: 384, path: 'jpeg@1/8' });
    const got = new Float32Array(3 * 112 * 112);
    await prepareInput(bytes, plan, spec, WORKER, kernel, got, 0);
    const ref = resizeCropU8(decodeImage(bytes, { maxPixels: 1e9 }), spec);
    const plane = 112 * 112;
    const u8 = new Uint8Array(plane * 3);
    for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) u8[i * 3 + c] = Math.round((got[c * plane + i]! * spec.std[c]! + spec.mean[c]!) * 255);
    const s = stats(u8, ref);
    console.log(`12 MP tiled coffee, 1/8 decode vs exact full decode, 112 crop of 128: mean ${s.mean.toFixed(3)} p99.9 ${s.p999} max ${s.max}`);
    expect(s.mean).toBeLessThanOrEqual(0.5);
    expect(s.p999).toBeLessThanOrEqual(8);
  });

  it('a 12 MP lossy WebP is decoded at reduced scale by libwebp, streamed, within the budget and the crop targets', async () => {
    // chelsea's fur mirror-tiled to 4032x3024, cwebp q85 (libwebp's encoder, through sharp).
    const full = mirrorTile(decodeImage(read('photos/chelsea.jpg'), { maxPixels: 1e9 }), 4032, 3024);
    const sharp = (await import('sharp')).default;
    const webp = new Uint8Array(await sharp(full.data, { raw: { width: full.width, height: full.height, channels: 3 } }).webp({ quality: 85 }).toBuffer());
    const plan = planFor(webp, SPEC, WORKER);
    // ceil(3024 / 5) = 605 >= 2 x 256: 1/5, the largest scale the rule allows.
    expect(plan).toMatchObject({ scale: 5, width: 807, height: 605, streams: true, path: 'webp-lossy@1/5' });
    expect(plan.reduction).toEqual({ fullWidth: 4032, fullHeight: 3024, scale: 5 });
    expect(plan.memoryBytes).toBeLessThan(WORKER.maxMemoryMB * 2 ** 20);
    const { resetWebpDecoder, webpDecoderMemoryBytes } = await import('../../src/image/webp');
    resetWebpDecoder();
    const before = process.memoryUsage().arrayBuffers;
    const got = toU8((await input(webp)).tensor);
    const grew = Math.max(0, process.memoryUsage().arrayBuffers - before);
    const wasm = webpDecoderMemoryBytes();
    expect(wasm + grew).toBeLessThanOrEqual(plan.memoryBytes + 4 * 2 ** 20); // + the resize's own rows
    expect(wasm).toBeLessThanOrEqual(plan.memoryBytes);
    // The exact full decode (Pillow's bytes: the same libwebp) resized as the reference does.
    const ref = referenceInput(webp).u8;
    const s = stats(got, ref);
    console.log(
      `12 MP tiled chelsea WebP q85 (${(webp.length / 1e6).toFixed(1)} MB), 1/5 decode vs exact full decode, 224 crop: mean ${s.mean.toFixed(3)} p99.9 ${s.p999} max ${s.max}; ` +
        `plan ${(plan.memoryBytes / 2 ** 20).toFixed(2)} MiB, wasm ${(wasm / 2 ** 20).toFixed(2)} MiB, arrayBuffers grew ${(grew / 2 ** 20).toFixed(2)} MiB`,
    );
    expect(s.mean).toBeLessThanOrEqual(0.5);
    expect(s.p999).toBeLessThanOrEqual(8);
  });

  it('a 12 MP PNG streams through in bounded memory, and equals the whole-image path', async () => {
    // Non-interlaced RGB, rows with a varying filter byte so every filter is exercised.
    const w = 4032;
    const h = 3024;
    const raw = new Uint8Array(h * (1 + w * 3));
    for (let y = 0; y < h; y++) {
      raw[y * (1 + w * 3)] = y % 5;
      for (let i = 1; i <= w * 3; i++) raw[y * (1 + w * 3) + i] = (i * 7 + y * 13) & 255;
    }
    const png = pngFile(w, h, zlibSync(raw, { level: 1 }));
    const plan = planFor(png, SPEC, WORKER);
    expect(plan.streams).toBe(true);
    expect(plan.memoryBytes).toBeLessThan(2 * 2 ** 20);
    const before = process.memoryUsage().arrayBuffers;
    const got = new Float32Array(N);
    await prepareInput(png, plan, SPEC, WORKER, kernel, got, 0);
    const grew = process.memoryUsage().arrayBuffers - before;
    console.log(`12 MP PNG streamed: plan ${(plan.memoryBytes / 2 ** 20).toFixed(2)} MiB, arrayBuffers grew ${(grew / 2 ** 20).toFixed(2)} MiB`);
    expect(grew).toBeLessThan(16 * 2 ** 20); // the full RGB image alone would be 35 MiB
    const want = new Float32Array(N);
    kernel.run(decodeImage(png, { maxPixels: 1e9 }), SPEC, want, 0);
    expect(got).toEqual(want);
  });
});

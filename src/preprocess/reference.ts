/**
 * Plain TypeScript reference of the zoo's preprocessing (imagenet_preprocess.py on PIL):
 * torchvision Resize(shorter side) with Pillow's antialiased BILINEAR, CenterCrop, ToTensor,
 * Normalize. The wasm kernel (wasm/preprocess) must match this bit for bit; this file must
 * match Pillow bit for bit on the 8-bit crop (test/node/preprocess.test.ts checks both).
 *
 * The resampler restates Pillow's src/libImaging/Resample.c (precompute_coeffs,
 * normalize_coeffs_8bpc, ImagingResample{Horizontal,Vertical}_8bpc): separable, horizontal
 * pass first into an 8-bit intermediate, then vertical, each with 22-bit fixed-point weights
 * and round-half-up. Only the rows and columns that survive the crop are computed; every
 * output pixel of Pillow's resize depends only on its own coefficients, so this is exact.
 */
import type { PreprocessSpec, RgbImage } from './types.js';

/** Pillow's PRECISION_BITS for 8-bit images: 32 - 8 bits of result - 2 bits of headroom. */
export const PRECISION_BITS = 22;

/**
 * `img` is an image of `fullWidth` x `fullHeight` decoded at 1/scale (a JPEG's DCT scaling):
 * its pixel j stands for the full image's pixels [j * scale, (j + 1) * scale), so it is
 * ceil(fullWidth / scale) wide. The resize then follows the full image's geometry (resized
 * size, crop window) and samples the reduced pixels at the positions the full ones map to, as
 * Pillow's `resize(size, box=(0, 0, fullWidth / scale, fullHeight / scale))` does after
 * `draft()`. Both sizes are upright, like `img`.
 */
export interface Reduction {
  fullWidth: number;
  fullHeight: number;
  scale: number;
}

export interface Geometry {
  /** Size after torchvision's Resize(resizeShorter). */
  resizedWidth: number;
  resizedHeight: number;
  /** Crop origin in resized coordinates; negative where torchvision's CenterCrop pads with 0. */
  left: number;
  top: number;
  cropWidth: number;
  cropHeight: number;
}

/** Python 3's round() on the halves CenterCrop produces: ties go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 0x7fff_ffff) {
    throw new RangeError(`preprocess: ${name} must be a positive integer, got ${v}`);
  }
}

/** Throws on anything the resampler cannot take, so both implementations reject the same input. */
export function validate(img: RgbImage, spec: PreprocessSpec, reduction?: Reduction): void {
  checkPositiveInt('image width', img.width);
  checkPositiveInt('image height', img.height);
  if (reduction) checkReduction(img.width, img.height, reduction);
  checkPositiveInt('resizeShorter', spec.resizeShorter);
  checkPositiveInt('cropWidth', spec.cropWidth);
  checkPositiveInt('cropHeight', spec.cropHeight);
  if (img.data.length !== img.width * img.height * 3) {
    throw new RangeError(
      `preprocess: expected ${img.width * img.height * 3} RGB bytes for ${img.width}x${img.height}, got ${img.data.length}`,
    );
  }
  for (let c = 0; c < 3; c++) {
    const m = spec.mean[c];
    const s = spec.std[c];
    if (m === undefined || s === undefined || !Number.isFinite(m) || !Number.isFinite(s) || s === 0) {
      throw new RangeError('preprocess: mean and std need 3 finite values, std non-zero');
    }
  }
}

/** The reduced size must be what decoding the full size at 1/scale gives. */
export function checkReduction(width: number, height: number, r: Reduction): void {
  checkPositiveInt('full width', r.fullWidth);
  checkPositiveInt('full height', r.fullHeight);
  checkPositiveInt('scale', r.scale);
  if (Math.ceil(r.fullWidth / r.scale) !== width || Math.ceil(r.fullHeight / r.scale) !== height) {
    throw new RangeError(
      `preprocess: ${width}x${height} is not ${r.fullWidth}x${r.fullHeight} at 1/${r.scale}`,
    );
  }
}

function cropOrigin(size: number, crop: number): number {
  // torchvision pads (crop - size) // 2 on the leading side, then crops at 0.
  if (crop > size) return -Math.floor((crop - size) / 2);
  return roundHalfEven((size - crop) / 2);
}

/** torchvision's _compute_resized_output_size (int size) and center_crop offsets. */
export function computeGeometry(width: number, height: number, spec: PreprocessSpec): Geometry {
  const short = width <= height ? width : height;
  const long = width <= height ? height : width;
  // Python's int(size * long / short): the product is exact, the quotient one rounding.
  const newLong = Math.trunc((spec.resizeShorter * long) / short);
  const resizedWidth = width <= height ? spec.resizeShorter : newLong;
  const resizedHeight = width <= height ? newLong : spec.resizeShorter;
  return {
    resizedWidth,
    resizedHeight,
    left: cropOrigin(resizedWidth, spec.cropWidth),
    top: cropOrigin(resizedHeight, spec.cropHeight),
    cropWidth: spec.cropWidth,
    cropHeight: spec.cropHeight,
  };
}

export interface Coefficients {
  /** Taps per output index (Pillow's ksize); row i of `weights` starts at i * ksize. */
  ksize: number;
  /** Per output index: first source index, tap count (0 for padded indices). */
  bounds: Int32Array;
  /** Fixed-point weights, PRECISION_BITS fractional bits, zero past the tap count. */
  weights: Int32Array;
}

function bilinearFilter(x: number): number {
  const a = x < 0 ? -x : x;
  return a < 1 ? 1 - a : 0;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for output indices [start, start + len)
 * of a resize from inSize to outSize, with the box [0, boxSize) of the input (the whole image
 * unless the input is a reduced decode, see Reduction). The double arithmetic is done in the
 * same order as the C code so the rounded integers agree exactly.
 */
export function precomputeCoeffs(inSize: number, outSize: number, start: number, len: number, boxSize = inSize): Coefficients {
  const scale = boxSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const ss = 1.0 / filterscale;
  const bounds = new Int32Array(len * 2);
  const weights = new Int32Array(len * ksize);
  const w = new Float64Array(ksize);
  const one = 1 << PRECISION_BITS;
  for (let i = 0; i < len; i++) {
    const xx = start + i;
    if (xx < 0 || xx >= outSize) continue;
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const v = bilinearFilter((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? (w[x] as number) / ww : (w[x] as number);
      weights[i * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * one) : Math.trunc(0.5 + k * one);
    }
    bounds[i * 2] = xmin;
    bounds[i * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

/** Pillow's clip8: drop the fraction, clamp to a byte. */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Resize + center crop as 8-bit HWC RGB (cropHeight x cropWidth x 3): the tensor before ToTensor. */
export function resizeCropU8(img: RgbImage, spec: PreprocessSpec, reduction?: Reduction): Uint8Array {
  validate(img, spec, reduction);
  const full = reduction ?? { fullWidth: img.width, fullHeight: img.height, scale: 1 };
  const g = computeGeometry(full.fullWidth, full.fullHeight, spec);
  const cw = g.cropWidth;
  const ch = g.cropHeight;
  const horiz = precomputeCoeffs(img.width, g.resizedWidth, g.left, cw, full.fullWidth / full.scale);
  const vert = precomputeCoeffs(img.height, g.resizedHeight, g.top, ch, full.fullHeight / full.scale);

  // Source rows the surviving output rows read; bounds are monotone, padded rows have count 0.
  let rowFirst = Number.MAX_SAFE_INTEGER;
  let rowEnd = 0;
  for (let y = 0; y < ch; y++) {
    const n = vert.bounds[y * 2 + 1] as number;
    if (n === 0) continue;
    const y0 = vert.bounds[y * 2] as number;
    rowFirst = Math.min(rowFirst, y0);
    rowEnd = Math.max(rowEnd, y0 + n);
  }
  const rowCount = Math.max(0, rowEnd - rowFirst);

  const half = 1 << (PRECISION_BITS - 1);
  const src = img.data;
  const tmp = new Uint8Array(rowCount * cw * 3);
  for (let r = 0; r < rowCount; r++) {
    const rowBase = (rowFirst + r) * img.width * 3;
    for (let x = 0; x < cw; x++) {
      const x0 = horiz.bounds[x * 2] as number;
      const n = horiz.bounds[x * 2 + 1] as number;
      const kb = x * horiz.ksize;
      let s0 = half;
      let s1 = half;
      let s2 = half;
      for (let k = 0; k < n; k++) {
        const wt = horiz.weights[kb + k] as number;
        const p = rowBase + (x0 + k) * 3;
        s0 += (src[p] as number) * wt;
        s1 += (src[p + 1] as number) * wt;
        s2 += (src[p + 2] as number) * wt;
      }
      const o = (r * cw + x) * 3;
      tmp[o] = clip8(s0);
      tmp[o + 1] = clip8(s1);
      tmp[o + 2] = clip8(s2);
    }
  }

  const out = new Uint8Array(ch * cw * 3);
  for (let y = 0; y < ch; y++) {
    const y0 = (vert.bounds[y * 2] as number) - rowFirst;
    const n = vert.bounds[y * 2 + 1] as number;
    const kb = y * vert.ksize;
    for (let i = 0; i < cw * 3; i++) {
      let s = half;
      for (let k = 0; k < n; k++) {
        s += (tmp[(y0 + k) * cw * 3 + i] as number) * (vert.weights[kb + k] as number);
      }
      out[y * cw * 3 + i] = clip8(s);
    }
  }
  return out;
}

/**
 * ToTensor + Normalize on an 8-bit HWC crop, written CHW at `offset`. Every step is rounded to
 * float32 as torch does it: (u8 / 255) - mean, then / std, with mean and std as float32.
 */
export function normalizeU8(
  u8: Uint8Array,
  height: number,
  width: number,
  spec: PreprocessSpec,
  out: Float32Array,
  offset: number,
): void {
  const plane = height * width;
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(spec.mean[c] as number);
    const std = Math.fround(spec.std[c] as number);
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) {
      const v = Math.fround((u8[i * 3 + c] as number) / 255);
      out[base + i] = Math.fround(v - mean) / std;
    }
  }
}

function checkOut(out: Float32Array, offset: number, n: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + n > out.length) {
    throw new RangeError(`preprocess: output needs ${n} floats at offset ${offset}, tensor has ${out.length}`);
  }
}

/** Whole pipeline: 3 * cropHeight * cropWidth float32 values, CHW, written into `out` at `offset`. */
export function preprocessReference(img: RgbImage, spec: PreprocessSpec, out: Float32Array, offset = 0, reduction?: Reduction): void {
  validate(img, spec, reduction);
  checkOut(out, offset, 3 * spec.cropHeight * spec.cropWidth);
  const u8 = resizeCropU8(img, spec, reduction);
  normalizeU8(u8, spec.cropHeight, spec.cropWidth, spec, out, offset);
}

/**
 * Our JPEG decoder: Pillow's (libjpeg-turbo's) pixels at full scale, bit for bit, and DCT-domain
 * reduced scales (1/2, 1/4, 1/8) for big photos, streamed to a RowSink in bounded memory.
 *
 *   decodeJpegTo(bytes, header, scale, sink, limits)  rows of the 1/scale image into sink
 *   decodeJpegImage(bytes, header, scale, limits)     the same, collected
 *   jpegDecodeMemory(header, scale, bytes?)           bytes the decoder will allocate
 *   jpegScaleFor(width, height, resizeShorter)        the scale whose output is close enough
 *
 * Errors are ApiErrors only: 422 for corrupt, truncated or unsupported files
 * (12-bit, lossless, hierarchical), 413 over limits.maxMemoryMB (decided before the
 * big allocations).
 */
import { tooLarge, unprocessableImage } from '../../errors';
import type { JpegHeader } from '../jpeg';
import { DEFAULT_MAX_MEMORY_MB, type DecodeLimits, type RgbImage, type RowSink } from '../types';
import { decodeInto, frameFacts, isArithmetic, isProgressive, memoryOf, reachesEoi, type FrameComponent } from './decoder';
import type { ReducedKernel } from './idct';

export type JpegScale = 1 | 2 | 4 | 8;

/**
 * The reduced IDCT in use. 'lowfreq' (an N-point IDCT of the N x N lowest coefficients, the idea
 * of jidctint.c's scaled kernels) beat 'box' (the exact mean of the full IDCT over each cell)
 * at the chosen scales: worst mean crop difference 0.45 vs 0.51 at 2 x resizeShorter, and it
 * keeps fewer coefficients of progressive files (4 of 64 a luma block at 1/4 instead of 25).
 */
export const REDUCED_KERNEL: ReducedKernel = 'lowfreq';

function check(header: JpegHeader, bytes: Uint8Array, limits: DecodeLimits): void {
  const sof = header.sof;
  if (sof === 0xc3 || sof === 0xcb) throw unprocessableImage('lossless JPEG is not supported');
  if (sof !== 0xc0 && sof !== 0xc1 && sof !== 0xc2 && !isArithmetic(sof)) throw unprocessableImage('hierarchical JPEG is not supported');
  if (header.precision !== 8) throw unprocessableImage(`${header.precision}-bit JPEG is not supported`);
  if (header.components !== 1 && header.components !== 3 && header.components !== 4) {
    throw unprocessableImage(`JPEG with ${header.components} components is not supported`);
  }
  if (header.width * header.height > limits.maxPixels) {
    throw tooLarge(`image is ${header.width}x${header.height} (${header.width * header.height} pixels), over the limit of ${limits.maxPixels}`);
  }
  // Pillow refuses a file whose data ends early ("image file is truncated"); so do we.
  if (!reachesEoi(bytes)) throw unprocessableImage('JPEG is truncated (no end-of-image marker)');
}

/** Internal: decodeJpegTo with a chosen reduced kernel and an allocation probe (measurements, tests). */
export function decodeJpegWith(
  bytes: Uint8Array,
  header: JpegHeader,
  scale: JpegScale,
  sink: RowSink,
  limits: DecodeLimits,
  kernel: ReducedKernel = REDUCED_KERNEL,
  onAllocate?: (bytes: number) => void,
  target?: () => Uint8Array,
): { width: number; height: number } {
  check(header, bytes, limits);
  const maxMemoryBytes = (limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB) * 2 ** 20;
  try {
    return decodeInto(bytes, sink, { scale, kernel, maxMemoryBytes, ...(onAllocate ? { onAllocate } : {}), ...(target ? { target } : {}) });
  } catch (err) {
    // Our own errors are ApiErrors; a RangeError (allocation) or anything else from hostile bytes is a 422.
    if (err instanceof Error && err.name === 'ApiError') throw err;
    throw unprocessableImage('corrupt JPEG', err);
  }
}

/** Streams the image at 1/scale (width = ceil(W/scale), height = ceil(H/scale), stored orientation) into sink. */
export function decodeJpegTo(bytes: Uint8Array, header: JpegHeader, scale: JpegScale, sink: RowSink, limits: DecodeLimits): { width: number; height: number } {
  return decodeJpegWith(bytes, header, scale, sink, limits);
}

/** Same, collected into one RgbImage. */
export function decodeJpegImage(bytes: Uint8Array, header: JpegHeader, scale: JpegScale, limits: DecodeLimits): RgbImage {
  const width = Math.ceil(header.width / scale);
  const height = Math.ceil(header.height / scale);
  let data: Uint8Array | null = null;
  // Allocated after the decoder's admission checks; rows are converted straight into it.
  const target = (): Uint8Array => (data ??= new Uint8Array(width * height * 3));
  const size = decodeJpegWith(bytes, header, scale, { write() {} }, limits, REDUCED_KERNEL, undefined, target);
  if (size.width !== width || size.height !== height || !data) throw unprocessableImage('corrupt JPEG: decoded size does not match its header');
  return { width, height, data };
}

const u16 = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;

/** The frame's components, and whether its first scan holds them all, read from the bytes. */
function frameOf(bytes: Uint8Array, header: JpegHeader): { comps: FrameComponent[]; singleScan: boolean } | null {
  // The SOF segment precedes the first SOS; find it by walking back from nothing: a forward walk.
  let comps: FrameComponent[] | null = null;
  for (let pos = 2; pos + 4 <= bytes.length; ) {
    if (bytes[pos] !== 0xff) return null;
    while (bytes[pos + 1] === 0xff) pos++;
    const code = bytes[pos + 1]!;
    if (code === 0xda) {
      if (!comps) return null;
      const n = bytes[pos + 4] ?? 0;
      return { comps, singleScan: n === comps.length && !isProgressive(header.sof) };
    }
    if ((code >= 0xd0 && code <= 0xd7) || code === 0x01) {
      pos += 2;
      continue;
    }
    const len = u16(bytes, pos + 2);
    if ((code >= 0xc0 && code <= 0xc2) || isArithmetic(code)) {
      const n = bytes[pos + 9] ?? 0;
      comps = [];
      for (let i = 0; i < n; i++) {
        const f = bytes[pos + 11 + 3 * i] ?? 0x11;
        comps.push({ id: 0, h: Math.min(4, Math.max(1, f >> 4)), v: Math.min(4, Math.max(1, f & 15)), tq: 0 });
      }
    }
    pos += 2 + len;
  }
  return null;
}

/**
 * Bytes the decoder will allocate for this file at this scale (for admission / 413 decisions).
 * With `bytes`, exact for the file's sampling factors and scan layout; from the header alone
 * (which lacks them), the most any sampling the header allows could need, assuming coefficients
 * are buffered (progressive, or one scan per component).
 */
export function jpegDecodeMemory(header: JpegHeader, scale: JpegScale, bytes?: Uint8Array): number {
  const { width, height } = header;
  const progressive = isProgressive(header.sof);
  const f = bytes ? frameOf(bytes, header) : null;
  if (f && f.comps.length === header.components) {
    return memoryOf({ width, height, comps: f.comps }, scale, !f.singleScan, progressive, REDUCED_KERNEL);
  }
  let worst = 0;
  const factors = [1, 2, 3, 4];
  for (const maxH of factors) {
    for (const maxV of factors) {
      // Components are independent given the largest factors; the first has them, each other
      // takes its costliest allowed (integral-ratio) sampling.
      const mem = (h: number, v: number, n: number): number => {
        const comps = [{ id: 0, h: maxH, v: maxV, tq: 0 }];
        for (let i = 1; i < n; i++) comps.push({ id: 0, h, v, tq: 0 });
        return memoryOf({ width, height, comps }, scale, true, progressive, REDUCED_KERNEL);
      };
      const base = mem(1, 1, 1);
      let total = base;
      for (let i = 1; i < Math.max(1, header.components); i++) {
        let extra = 0;
        for (const h of factors) {
          for (const v of factors) {
            if (maxH % h !== 0 || maxV % v !== 0) continue;
            extra = Math.max(extra, mem(h, v, 2) - base);
          }
        }
        total += extra;
      }
      worst = Math.max(worst, total);
    }
  }
  return worst;
}

/**
 * The scale to decode at for a model that resizes the shorter side to `resizeShorter`: the
 * largest whose reduced shorter side, ceil(shorter / scale), stays at least SCALE_RATIO[scale]
 * * resizeShorter.
 *
 * Measured (bench/jpeg-decode.ts --reduced; 4 photos upscaled to 1024..4032, 4 encodings each,
 * 224 crop of 256 against Pillow's full decode + resize): with the 'lowfreq' kernel, every
 * 1/2 and 1/4 decode with reduced shorter side >= 1.97 x 256 has mean |diff| <= 0.45 and 99.9%
 * of values within 5 levels (max 7); at 1..1.5 x the mean reaches 2.1 and the 99.9th
 * percentile 24. At 1/8 only the DC term is left (an 8x8 box average), a coarser pre-filter:
 * a 4096x4096 photo at ratio 2 missed (mean 0.66, test/node/fidelity.test.ts), so 1/8 waits
 * for ratio 3 (measured worst mean 0.17 there). With the default MAX_PIXELS (16 MP) that means
 * 1/8 is never used; it serves deployments that admit larger photos.
 */
export function jpegScaleFor(width: number, height: number, resizeShorter: number): JpegScale {
  const shorter = Math.min(width, height);
  for (const s of [8, 4, 2] as const) {
    if (Math.ceil(shorter / s) >= SCALE_RATIO[s] * resizeShorter) return s;
  }
  return 1;
}

/** Reduced shorter side / resizeShorter needed at each scale; see jpegScaleFor. */
export const SCALE_RATIO: Readonly<Record<2 | 4 | 8, number>> = { 2: 2, 4: 2, 8: 3 };

/**
 * A JpegHeader from our own marker walk, which skips junk between segments as libjpeg does
 * (jpeg.ts's readJpegHeader refuses such files, which Pillow opens). Orientation is not read.
 */
export function lenientJpegHeader(bytes: Uint8Array): JpegHeader | null {
  const f = frameFacts(bytes);
  if (!f) return null;
  return { format: 'jpeg', orientation: 1, rgb: false, adobeTransform: null, ...f };
}

/**
 * WebP: lossy, lossless, alpha, animated (first frame), EXIF orientation. The container is read
 * by our own header.ts; the pixels come from our build of libwebp 1.2.4 (wasm/webp: Debian's
 * source, the reference's version), which hands out rows as it decodes them through a ring of 40
 * rows and can scale down with libwebp's rescaler. One decoder per isolate, instantiated on
 * first use from the compiled module (./module.ts; `new WebAssembly.Instance` is synchronous,
 * which Workers allow for a precompiled module), so decoding is synchronous.
 *
 * Reference: Pillow 9.4 with libwebp 1.2.4, `convert('RGB')`. Pillow decodes every WebP through
 * WebPAnimDecoder in non-premultiplied RGBA, so:
 * - alpha is DROPPED, not composited: a transparent pixel keeps the colour it stores (RGB mode
 *   gives the same R, G, B);
 * - an animated file gives its first frame on a canvas of zeros (libwebp's anim decoder clears
 *   the canvas to transparent black for a key frame), so outside the frame's rectangle is black;
 * - a lossy file whose ALPH chunk is corrupt is refused. RGB mode never reads ALPH, so the frame
 *   is decoded in RGBA (alpha then dropped) when that fits the budget: webpChecksAlpha;
 * - EXIF orientation comes from the EXIF chunk of a VP8X file whose flags announce it; the rows
 *   here are in stored orientation and src/image/index.ts turns them upright.
 * Full-size output is identical to Pillow's on every file tested, lossy included.
 *
 * Reduced scale (lossy, whole-canvas frames; see header.ts webpScaleFor): libwebp crops the
 * input to a multiple of the scale and rescales it (an s x s box per pixel), the last column and
 * row padded (wasm/webp reducedDecodeOptions), which is the geometry the resize's Reduction wants.
 *
 * Memory: header.ts webpDecodeMemory, checked before decoding (413), and the decoder's linear
 * memory is capped at the decode budget (libwebp's "out of memory" is a 413 too).
 */
import { tooLarge, unprocessableImage } from '../../errors';
import { reducedDecodeOptions, WebpDecoder, WebpError, type WebpDecodeOptions } from '../../../wasm/webp/index';
import { DEFAULT_MAX_MEMORY_MB, type DecodeLimits, type RgbImage, type RowSink } from '../types';
import { firstFrameFileBytes, webpChecksAlpha, webpDecodeMemory, type WebpHeader, type WebpScale } from './header';

export { readWebpHeader, webpChecksAlpha, webpDecodeMemory, webpScaleFor, type WebpHeader, type WebpScale } from './header';

// See ./module.ts for why this is a top-level dynamic import. null: no .wasm loader (Node tools).
const webpModule: WebAssembly.Module | null = await import('./module').then(
  (m) => m.default,
  () => null,
);

let decoder: WebpDecoder | null = null;

/** The isolate's decoder (the binding replaces a trapped instance by itself on the next call). */
function libwebp(): WebpDecoder {
  if (decoder) return decoder;
  if (!webpModule) throw new Error('WebP: the libwebp .wasm module did not load (in Node, import models/src/node-wasm.ts first)');
  decoder = WebpDecoder.fromModule(webpModule);
  return decoder;
}

/** Size of the decoder's linear memory now (it never shrinks); 0 before the first decode. For tests and tools. */
export function webpDecoderMemoryBytes(): number {
  return decoder?.memoryBytes ?? 0;
}

/** The most libwebp's heap held at once since the decoder was made (its allocator's count). For tests. */
export function webpDecoderHeapPeak(): number {
  return decoder?.heap().peak ?? 0;
}

/** Drops the isolate's decoder: the next decode starts with a fresh 1 MiB instance. For tests. */
export function resetWebpDecoder(): void {
  decoder = null;
}

/** A chunk of `bytes` with its padding byte, as it goes into a RIFF. */
function chunkBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const size = end - start;
  const out = new Uint8Array(size + ((end - start - 8) & 1));
  out.set(bytes.subarray(start, end));
  return out;
}

/** A still WebP holding an animation's first frame: its image chunk, with ALPH in a VP8X file. */
export function firstFrameFile(bytes: Uint8Array, header: WebpHeader): Uint8Array {
  const { frame } = header;
  const parts: Uint8Array[] = [];
  if (frame.alphEnd > 0) {
    const vp8x = new Uint8Array(18);
    vp8x.set([0x56, 0x50, 0x38, 0x58, 10, 0, 0, 0, 0x10]); // "VP8X", 10, alpha flag
    const w = frame.width - 1;
    const h = frame.height - 1;
    vp8x.set([w & 0xff, (w >> 8) & 0xff, w >> 16, h & 0xff, (h >> 8) & 0xff, h >> 16], 12);
    parts.push(vp8x, chunkBytes(bytes, frame.alphStart, frame.alphEnd));
  }
  parts.push(chunkBytes(bytes, frame.start, frame.end));
  const size = 4 + parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(8 + size);
  out.set([0x52, 0x49, 0x46, 0x46, size & 0xff, (size >> 8) & 0xff, (size >> 16) & 0xff, size >>> 24, 0x57, 0x45, 0x42, 0x50]);
  let pos = 12;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  if (out.length !== firstFrameFileBytes(header)) throw new Error('firstFrameFile: size does not match firstFrameFileBytes');
  return out;
}

const MIB = 1048576;
const kind = (h: WebpHeader) => (h.lossless ? 'lossless' : 'lossy');

/** Decoded size at `scale`: ceil(size / scale) each way (the canvas, in stored orientation). */
export const webpScaledSize = (header: WebpHeader, scale: WebpScale) => ({
  width: Math.ceil(header.width / scale),
  height: Math.ceil(header.height / scale),
});

/** 413 before decoding when the pixels or the decode's memory (+ `extra` bytes of ours) are over the limits. */
function checkLimits(header: WebpHeader, scale: WebpScale, limits: DecodeLimits, extra: number): { alpha: boolean; budget: number } {
  const { width, height } = header;
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    throw tooLarge(`image is ${width}x${height} (${pixels} pixels), over the limit of ${limits.maxPixels}`);
  }
  const budgetMB = limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB;
  const budget = budgetMB * MIB; // (as planDecode counts it, so that both decide the same)
  const alpha = webpChecksAlpha(header, scale, budget);
  const need = webpDecodeMemory(header, scale, alpha) + extra;
  if (need > budget) {
    const why = header.lossless ? ' (libwebp holds a lossless image whole: 4 bytes a pixel)' : '';
    throw tooLarge(`decoding this ${width}x${height} ${kind(header)} WebP needs ${Math.ceil(need / MIB)} MB, over the budget of ${budgetMB} MB${why}`);
  }
  return { alpha, budget };
}

/** libwebp's failure as an ApiError: 413 out of memory, 422 for the file; rethrows our own bugs. */
function mapError(err: unknown, header: WebpHeader, budgetMB: number): unknown {
  if (!(err instanceof WebpError)) return err;
  switch (err.code) {
    case 1:
      return tooLarge(`decoding this ${header.width}x${header.height} ${kind(header)} WebP needs more than the ${budgetMB} MB budget (libwebp ran out of memory)`);
    case 3:
      return unprocessableImage('corrupt WebP: bad bitstream', err);
    case 4:
      return unprocessableImage('unsupported WebP feature', err);
    case 7:
      return unprocessableImage('truncated WebP', err);
    case 21:
      return unprocessableImage('corrupt WebP: libwebp reads another size than the header', err);
    case 0:
      // A trap (the binding drops the instance: the next decode gets a fresh one); anything
      // else with code 0 is a bad call of ours.
      return err.message.includes('trapped') ? unprocessableImage('WebP decoder failed', err) : err;
    default:
      return unprocessableImage('WebP decoder failed', err);
  }
}

/**
 * Streams the first frame, decoded at 1/`scale`, into `sink` as RGB rows of the canvas
 * (ceil(width / scale) x ceil(height / scale), stored orientation), top to bottom, each once.
 * Rows are views into the decoder's memory (or our one batch buffer), valid during the call.
 * 413 over the pixel limit or the memory budget (from the header, before decoding) or when
 * libwebp runs out of the budget; 422 for what libwebp cannot decode. `extraBytes`: memory the
 * caller adds on top (a collected image), counted against the budget.
 */
export function decodeWebpTo(bytes: Uint8Array, header: WebpHeader, scale: WebpScale, sink: RowSink, limits: DecodeLimits, extraBytes = 0): { width: number; height: number } {
  const { frame } = header;
  const { alpha, budget } = checkLimits(header, scale, limits, extraBytes);
  const { width, height } = webpScaledSize(header, scale);
  const whole = frame.x === 0 && frame.y === 0 && frame.width === header.width && frame.height === header.height;
  if (scale > 1 && !whole) throw new Error(`decodeWebpTo: a frame with an offset is decoded at full size only, not 1/${scale}`);
  const options: WebpDecodeOptions = { ...(scale > 1 ? reducedDecodeOptions(header.width, header.height, scale) : {}), rgba: alpha, maxMemoryBytes: Math.floor(budget) };
  const input = header.animated ? firstFrameFile(bytes, header) : bytes.subarray(0, header.fileEnd);

  const channels = alpha ? 4 : 3;
  const inWidth = whole ? width : frame.width; // the delivered rows' width (scaled, padded)
  const inRows = whole ? height : frame.height;
  const rowBytes = width * 3;
  // Rows go to the sink as they are, unless they must be compacted to RGB or placed on the canvas.
  const direct = !alpha && whole;
  const buffer = direct ? null : new Uint8Array(40 * rowBytes);
  let next = 0; // next canvas row for the sink
  const zeroRows = (upTo: number) => {
    while (next < upTo) {
      const n = Math.min(40, upTo - next);
      buffer!.fill(0, 0, n * rowBytes);
      sink.write(buffer!, next, n);
      next += n;
    }
  };
  let delivered = 0;
  const onRows = (rows: Uint8Array, y0: number, count: number) => {
    if (y0 !== delivered || rows.length !== count * inWidth * channels || delivered + count > inRows) {
      throw unprocessableImage(`corrupt WebP: libwebp delivered rows ${y0}..${y0 + count} of ${rows.length / count / channels} pixels, expected row ${delivered} of ${inWidth}`);
    }
    delivered += count;
    if (!buffer) {
      sink.write(rows, y0, count);
      next = y0 + count;
      return;
    }
    zeroRows(frame.y + y0); // (the rows above an offset frame, once)
    for (let start = 0; start < count; start += 40) {
      const n = Math.min(40, count - start);
      buffer.fill(0, 0, n * rowBytes);
      for (let r = 0; r < n; r++) {
        let s = (start + r) * inWidth * channels;
        let d = r * rowBytes + frame.x * 3;
        if (channels === 3) {
          buffer.set(rows.subarray(s, s + inWidth * 3), d);
          continue;
        }
        for (let x = 0; x < inWidth; x++, s += 4, d += 3) {
          buffer[d] = rows[s]!;
          buffer[d + 1] = rows[s + 1]!;
          buffer[d + 2] = rows[s + 2]!;
        }
      }
      sink.write(buffer, next, n);
      next += n;
    }
  };

  const budgetMB = limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB;
  let got: { width: number; height: number };
  try {
    got = libwebp().decode(input, options, onRows);
  } catch (err) {
    throw mapError(err, header, budgetMB);
  }
  if (got.width !== inWidth || got.height !== inRows || delivered !== inRows) {
    throw unprocessableImage(`corrupt WebP: decoded ${got.width}x${got.height}, the header says ${inWidth}x${inRows}`);
  }
  if (buffer) zeroRows(height); // (the rows below an offset frame)
  return { width, height };
}

/** The first frame at 1/`scale` as one RGB image in stored orientation (the image counted against the budget). */
export function decodeWebpImage(bytes: Uint8Array, header: WebpHeader, scale: WebpScale, limits: DecodeLimits): RgbImage {
  const { width, height } = webpScaledSize(header, scale);
  checkLimits(header, scale, limits, width * height * 3); // (before allocating the image)
  const data = new Uint8Array(width * height * 3);
  const sink: RowSink = { write: (rows, y0, count) => data.set(rows.subarray(0, count * width * 3), y0 * width * 3) };
  decodeWebpTo(bytes, header, scale, sink, limits, width * height * 3);
  return { width, height, data };
}

/** The first frame at full size, stored orientation (decodeWebpImage at scale 1). */
export function decodeWebp(bytes: Uint8Array, header: WebpHeader, limits: DecodeLimits): RgbImage {
  return decodeWebpImage(bytes, header, 1, limits);
}

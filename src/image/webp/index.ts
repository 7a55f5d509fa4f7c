/**
 * WebP: lossy, lossless, alpha, animated (first frame), EXIF orientation. The container is read
 * by our own header.ts; the pixels come from libwebp compiled to WebAssembly by jSquash
 * (@jsquash/webp, Squoosh's build: WebPDecodeRGBA behind an embind `decode`). This is the only
 * module that imports its .wasm: a compiled WebAssembly.Module under wrangler and the vitest
 * workers pool (src/types/modules.d.ts), handed to jSquash's `init`, which instantiates it
 * synchronously (Workers cannot compile WebAssembly from bytes at run time).
 *
 * Reference: Pillow 9.4 with libwebp 1.2, `convert('RGB')`. Pillow decodes every WebP through
 * WebPAnimDecoder in non-premultiplied RGBA, so:
 * - alpha is DROPPED, not composited: a transparent pixel keeps the colour it stores;
 * - an animated file gives its first frame on a canvas of zeros (libwebp's anim decoder clears
 *   the canvas to transparent black for a key frame), so outside the frame's rectangle is black;
 * - EXIF orientation comes from the EXIF chunk of a VP8X file whose flags announce it; as for
 *   the other decoders, the pixels returned here are in stored orientation and
 *   src/image/index.ts turns them upright.
 * Lossless decodes are identical to Pillow's. Lossy ones are within a level or two: jSquash's
 * libwebp is older than Debian's 1.2.4 (see test/node/webp.test.ts for the measured bounds).
 *
 * Memory: libwebp's simple API decodes a whole frame to RGBA inside the wasm heap, embind copies
 * it out, and we compact it to RGB: ~11 bytes a pixel for lossy (15 for lossless) on top of the
 * wasm instance's own 16 MiB initial heap, which grows to the largest decode and never shrinks.
 * No npm build of libwebp exposes scaled decoding (WebPDecoderConfig.options.use_scaling) or
 * incremental row output (WebPIDecode) to JavaScript, so a large WebP is refused with a 413 that
 * says what the decode would need, instead of being decoded at a reduced scale.
 */
import webpWasm from '@jsquash/webp/codec/dec/webp_dec.wasm';
import jsquashDecode, { init as jsquashInit } from '@jsquash/webp/decode.js';
import { tooLarge, unprocessableImage } from '../../errors';
import { DEFAULT_MAX_MEMORY_MB, type DecodeLimits, type RgbImage } from '../types';
import { webpDecodeMemory, type WebpHeader } from './header';

export { readWebpHeader, webpDecodeMemory, type WebpHeader } from './header';

type Decode = (data: Uint8Array) => Promise<{ data: Uint8ClampedArray; width: number; height: number }>;
const decodeRgba = jsquashDecode as unknown as Decode;
const init = jsquashInit as unknown as (module: WebAssembly.Module) => Promise<void>;
let initialised = false;

/** libwebp in the wasm instance; a fresh instance after a trap (an aborted instance stays dead). */
async function libwebp(data: Uint8Array): Promise<{ data: Uint8ClampedArray; width: number; height: number }> {
  if (!initialised) {
    await init(webpWasm);
    initialised = true;
  }
  try {
    return await decodeRgba(data);
  } catch (err) {
    const trapped = !(err instanceof Error && err.message === 'Decoding error');
    if (trapped) initialised = false;
    throw unprocessableImage(trapped ? 'WebP decoder failed' : 'corrupt WebP: libwebp cannot decode it', err);
  }
}

/** A chunk of `bytes` with its padding byte, as it goes into a RIFF. */
function chunkBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const size = end - start;
  const out = new Uint8Array(size + ((end - start - 8) & 1));
  out.set(bytes.subarray(start, end));
  return out;
}

/** A still WebP holding an animation's first frame: its image chunk, with ALPH in a VP8X file. */
function firstFrameFile(bytes: Uint8Array, header: WebpHeader): Uint8Array {
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
  return out;
}

/**
 * The first frame as RGB in stored orientation, `header.width` x `header.height`. 413 over the
 * pixel limit or the memory budget (from the header, before libwebp allocates anything), 422 for
 * what libwebp cannot decode.
 */
export async function decodeWebp(bytes: Uint8Array, header: WebpHeader, limits: DecodeLimits): Promise<RgbImage> {
  const { width, height, frame } = header;
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    throw tooLarge(`image is ${width}x${height} (${pixels} pixels), over the limit of ${limits.maxPixels}`);
  }
  const budgetMB = limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB;
  const need = webpDecodeMemory(header);
  if (need > budgetMB * 1048576) {
    throw tooLarge(
      `decoding this ${width}x${height} ${header.lossless ? 'lossless' : 'lossy'} WebP needs ${Math.ceil(need / 1048576)} MB, ` +
        `over the budget of ${budgetMB} MB (the WebP decoder has no reduced-scale or row-by-row decoding)`,
    );
  }

  const rgba = await libwebp(header.animated ? firstFrameFile(bytes, header) : bytes);
  if (rgba.width !== frame.width || rgba.height !== frame.height) {
    throw unprocessableImage(`corrupt WebP: decoded ${rgba.width}x${rgba.height}, the header says ${frame.width}x${frame.height}`);
  }
  const out = new Uint8Array(pixels * 3); // zeros: the canvas outside an animation's first frame
  const src = rgba.data;
  for (let row = 0; row < frame.height; row++) {
    let s = row * frame.width * 4;
    let d = ((frame.y + row) * width + frame.x) * 3;
    for (let col = 0; col < frame.width; col++, s += 4, d += 3) {
      out[d] = src[s]!;
      out[d + 1] = src[s + 1]!;
      out[d + 2] = src[s + 2]!;
    }
  }
  return { width, height, data: out };
}

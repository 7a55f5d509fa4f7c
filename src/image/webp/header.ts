/**
 * WebP container facts from the RIFF chunks alone (no decoding): size, lossy/lossless, alpha,
 * animation, EXIF orientation, and where the first frame's image data is. Every read is bounds
 * checked; anything malformed is a 422 naming the defect.
 *
 * Layouts (https://developers.google.com/speed/webp/docs/riff_container):
 *   simple lossy     RIFF size WEBP | VP8  ...
 *   simple lossless  RIFF size WEBP | VP8L ...
 *   extended         RIFF size WEBP | VP8X flags canvas | [ICCP] [ANIM ANMF...] | [ALPH] VP8 /VP8L | [EXIF] [XMP ]
 */
import { unprocessableImage } from '../../errors';
import { readExifOrientation } from '../exif';
import type { ImageInfo } from '../types';

export interface WebpHeader extends ImageInfo {
  format: 'webp';
  /** The first frame's bitstream is VP8L. */
  lossless: boolean;
  /** The file says it has alpha (VP8X flag, ALPH chunk or VP8L alpha bit); dropped when decoding. */
  alpha: boolean;
  /** VP8X animation flag: the decode is the first frame, composed on the canvas. */
  animated: boolean;
  /**
   * The first frame: its rectangle on the canvas, and the chunks (optional ALPH, then VP8/VP8L)
   * that make it, as offsets into the file. For a still image the rectangle is the whole canvas.
   */
  frame: { x: number; y: number; width: number; height: number; start: number; end: number; alphStart: number; alphEnd: number };
  /** End of the RIFF payload: what libwebp reads of a still file (it ignores anything after). */
  fileEnd: number;
}

/** libwebp's MAX_CHUNK_PAYLOAD. */
const MAX_CHUNK_PAYLOAD = 0xfffffff6;

const FLAG_ANIMATION = 0x02;
const FLAG_EXIF = 0x08;
const FLAG_ALPHA = 0x10;

const refuse = (what: string) => unprocessableImage(`corrupt WebP: ${what}`);
const u24 = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16);
const u32 = (b: Uint8Array, i: number): number => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
const fourcc = (b: Uint8Array, i: number): string => String.fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!);

interface Chunk {
  type: string;
  /** Offset of the chunk header, of its payload, and the end of its payload (before padding). */
  at: number;
  start: number;
  end: number;
}

/** The chunks in [from, to), each header and payload inside the range (the padding byte may not be). */
function chunks(bytes: Uint8Array, from: number, to: number, where: string): Chunk[] {
  const out: Chunk[] = [];
  let pos = from;
  while (pos + 8 <= to) {
    const size = u32(bytes, pos + 4);
    if (size > MAX_CHUNK_PAYLOAD || pos + 8 + size > to) throw refuse(`${where}: chunk ${JSON.stringify(fourcc(bytes, pos))} runs past its end`);
    out.push({ type: fourcc(bytes, pos), at: pos, start: pos + 8, end: pos + 8 + size });
    pos += 8 + size + (size & 1);
  }
  return out;
}

/** Width, height and alpha bit of a VP8 (lossy) or VP8L (lossless) bitstream's header. */
function bitstreamSize(bytes: Uint8Array, chunk: Chunk): { width: number; height: number; alpha: boolean } {
  const { start, end } = chunk;
  if (chunk.type === 'VP8L') {
    if (end - start < 5) throw refuse('VP8L header is truncated');
    if (bytes[start] !== 0x2f) throw refuse('bad VP8L signature');
    const bits = u32(bytes, start + 1);
    if (bits >>> 29 !== 0) throw refuse(`unknown VP8L version ${bits >>> 29}`);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1, alpha: ((bits >>> 28) & 1) === 1 };
  }
  if (end - start < 10) throw refuse('VP8 header is truncated');
  const tag = u24(bytes, start);
  if (tag & 1) throw refuse('VP8 data is not a key frame');
  if (((tag >> 1) & 7) > 3) throw refuse('unknown VP8 profile');
  if (!((tag >> 4) & 1)) throw refuse('VP8 frame is not shown');
  if (bytes[start + 3] !== 0x9d || bytes[start + 4] !== 0x01 || bytes[start + 5] !== 0x2a) throw refuse('bad VP8 start code');
  const width = (bytes[start + 6]! | (bytes[start + 7]! << 8)) & 0x3fff;
  const height = (bytes[start + 8]! | (bytes[start + 9]! << 8)) & 0x3fff;
  if (width === 0 || height === 0) throw refuse(`VP8 frame is ${width}x${height}`);
  return { width, height, alpha: false };
}

/** The image chunk (VP8/VP8L) of a frame's chunk list, with the ALPH chunk before it if any. */
function imageOf(list: Chunk[], where: string): { image: Chunk; alph: Chunk | null } {
  let alph: Chunk | null = null;
  for (const c of list) {
    if (c.type === 'VP8 ' || c.type === 'VP8L') return { image: c, alph: c.type === 'VP8 ' ? alph : null };
    if (c.type === 'ALPH') alph ??= c;
  }
  throw refuse(`${where} has no VP8 or VP8L image data`);
}

export function readWebpHeader(bytes: Uint8Array): WebpHeader {
  if (bytes.length < 12 || fourcc(bytes, 0) !== 'RIFF' || fourcc(bytes, 8) !== 'WEBP') throw unprocessableImage('not a WebP file');
  const riffSize = u32(bytes, 4);
  if (riffSize < 12 || riffSize > MAX_CHUNK_PAYLOAD) throw refuse(`bad RIFF size ${riffSize}`);
  if (8 + riffSize > bytes.length) throw refuse(`truncated: the RIFF header says ${8 + riffSize} bytes, the file has ${bytes.length}`);
  const end = 8 + riffSize; // anything after the RIFF payload is ignored, as libwebp does
  const list = chunks(bytes, 12, end, 'file');
  const first = list[0];
  if (!first) throw refuse('no chunks');

  if (first.type === 'VP8 ' || first.type === 'VP8L') {
    const { width, height, alpha } = bitstreamSize(bytes, first);
    return {
      format: 'webp',
      width,
      height,
      orientation: 1,
      lossless: first.type === 'VP8L',
      alpha,
      animated: false,
      frame: { x: 0, y: 0, width, height, start: first.at, end: first.end, alphStart: 0, alphEnd: 0 },
      fileEnd: end,
    };
  }
  if (first.type !== 'VP8X') throw refuse(`unexpected first chunk ${JSON.stringify(first.type)}`);
  if (first.end - first.start < 10) throw refuse('VP8X chunk is truncated');
  const flags = bytes[first.start]!;
  const width = u24(bytes, first.start + 4) + 1;
  const height = u24(bytes, first.start + 7) + 1;
  // Pillow (WebPDemux) reads EXIF only when the VP8X flag announces it.
  const exif = flags & FLAG_EXIF ? list.find((c) => c.type === 'EXIF') : undefined;
  const orientation = exif ? readExifOrientation(bytes.subarray(exif.start, exif.end)) : 1;
  const animated = (flags & FLAG_ANIMATION) !== 0;
  const rest = list.slice(1);

  if (animated) {
    if (!rest.some((c) => c.type === 'ANIM')) throw refuse('animation without an ANIM chunk');
    const anmf = rest.find((c) => c.type === 'ANMF');
    if (!anmf) throw refuse('animation without frames');
    if (anmf.end - anmf.start < 16) throw refuse('ANMF chunk is truncated');
    const x = u24(bytes, anmf.start) * 2;
    const y = u24(bytes, anmf.start + 3) * 2;
    const fw = u24(bytes, anmf.start + 6) + 1;
    const fh = u24(bytes, anmf.start + 9) + 1;
    if (x + fw > width || y + fh > height) throw refuse(`first frame ${fw}x${fh}+${x}+${y} is outside the ${width}x${height} canvas`);
    const { image, alph } = imageOf(chunks(bytes, anmf.start + 16, anmf.end, 'ANMF'), 'first frame');
    const size = bitstreamSize(bytes, image);
    if (size.width !== fw || size.height !== fh) throw refuse(`first frame is ${size.width}x${size.height}, its ANMF says ${fw}x${fh}`);
    return {
      format: 'webp',
      width,
      height,
      orientation,
      lossless: image.type === 'VP8L',
      alpha: (flags & FLAG_ALPHA) !== 0 || alph !== null || size.alpha,
      animated,
      frame: { x, y, width: fw, height: fh, start: image.at, end: image.end, alphStart: alph?.at ?? 0, alphEnd: alph?.end ?? 0 },
      fileEnd: end,
    };
  }

  const { image, alph } = imageOf(rest, 'file');
  const size = bitstreamSize(bytes, image);
  if (size.width !== width || size.height !== height) throw refuse(`image is ${size.width}x${size.height}, its VP8X canvas says ${width}x${height}`);
  return {
    format: 'webp',
    width,
    height,
    orientation,
    lossless: image.type === 'VP8L',
    alpha: (flags & FLAG_ALPHA) !== 0 || alph !== null || size.alpha,
    animated,
    frame: { x: 0, y: 0, width, height, start: image.at, end: image.end, alphStart: alph?.at ?? 0, alphEnd: alph?.end ?? 0 },
    fileEnd: end,
  };
}

/** Reduced scales a WebP is decoded at (libwebp's rescaler; measured up to 1/5, see wasm/webp/README.md). */
export type WebpScale = 1 | 2 | 3 | 4 | 5;

/**
 * The scale for a model that resizes the shorter side to `target`: the largest s in 2..5 whose
 * reduced shorter side ceil(shorter / s) is still >= 2 x target (the rule measured in
 * wasm/webp/README.md: crop within mean 0.38, p99.9 3 levels of the full decode's), else 1.
 * Lossy only (the rule was measured on VP8; VP8L holds its whole image whatever the scale, and
 * its rescaler premultiplies alpha, which Pillow's full decode does not), and only when the
 * first frame covers the whole canvas.
 */
export function webpScaleFor(header: WebpHeader, target: number | undefined): WebpScale {
  const { frame } = header;
  if (!target || header.lossless || frame.x !== 0 || frame.y !== 0 || frame.width !== header.width || frame.height !== header.height) return 1;
  const shorter = Math.min(header.width, header.height);
  for (const s of [5, 4, 3, 2] as const) if (Math.ceil(shorter / s) >= 2 * target) return s;
  return 1;
}

/*
 * The decoder's memory (wasm/webp: libwebp 1.2.4 in its own linear memory, which grows to the
 * largest decode and never shrinks; webp_heap_limit caps it). Measured with the allocator's peak
 * (wasm/webp's heap()) on the fixtures and on cwebp/sharp encodings at 1200x900 .. 4032x3024:
 *   VP8 (lossy): ~128-130 bytes per column of the frame width (macroblock caches, filter rows,
 *     the rescaler's rows when scaling), whatever the height, + ~20 KB of tables;
 *   VP8L (lossless): 4 bytes a pixel (the ARGB image: the bitstream may copy from anywhere
 *     above) + up to ~365 bytes per column (Huffman tables, transforms, 32 cache rows), + ~100 KB;
 *   ALPH decoded (RGBA mode): 2.2-6.2 bytes a pixel (a 1-byte alpha plane + VP8L's alpha image,
 *     1 byte a pixel when it is palette-only, else 4, + Huffman tables), + ~80 KB;
 *   the output ring: 40 rows of the delivered width x 3 (RGB) or 4 (RGBA).
 * The constants below round those up. A file whose Huffman tables are larger than any encoder
 * makes is not covered: the decode's memory cap (the budget) turns it into a clean 413.
 */
/** Initial linear memory (static data, 256 KiB stack, the heap's first pages) and page rounding. */
const WASM_BASE_BYTES = 1024 * 1024;
const VP8_BYTES_PER_COLUMN = 160;
const VP8_FIXED_BYTES = 64 * 1024;
const VP8L_BYTES_PER_COLUMN = 512;
const VP8L_FIXED_BYTES = 192 * 1024;
const ALPH_BYTES_PER_PIXEL = 7;
const ALPH_FIXED_BYTES = 192 * 1024;
/** Rows of the binding's output ring (and of our JS row buffer, which takes one batch). */
const RING_ROWS = 40;

/** Bytes of the still file that firstFrameFile makes of an animation's first frame. */
export function firstFrameFileBytes(header: WebpHeader): number {
  const { frame } = header;
  const chunk = (start: number, end: number) => end - start + ((end - start - 8) & 1);
  return 12 + chunk(frame.start, frame.end) + (frame.alphEnd > 0 ? 18 + chunk(frame.alphStart, frame.alphEnd) : 0);
}

/**
 * Bytes one decode takes at its peak, an upper bound: the wasm memory (its initial 1 MiB, the
 * input copied in, libwebp's state, the output ring, VP8L's ARGB image, the alpha planes when
 * `alpha`: RGBA mode, see webpChecksAlpha) + our JS buffers (an animation's first frame as a
 * still file, a batch of canvas rows when the frame has an offset or comes as RGBA). Not the
 * collected image: planDecode adds that when it collects.
 */
export function webpDecodeMemory(header: WebpHeader, scale: WebpScale = 1, alpha = false): number {
  const { frame } = header;
  const framePixels = frame.width * frame.height;
  const outWidth = Math.ceil(header.width / scale);
  const input = header.animated ? 2 * firstFrameFileBytes(header) : header.fileEnd;
  let bytes = WASM_BASE_BYTES + input + RING_ROWS * Math.ceil(frame.width / scale) * (alpha ? 4 : 3);
  bytes += header.lossless
    ? VP8L_FIXED_BYTES + 4 * framePixels + VP8L_BYTES_PER_COLUMN * frame.width
    : VP8_FIXED_BYTES + VP8_BYTES_PER_COLUMN * frame.width;
  if (alpha) bytes += ALPH_FIXED_BYTES + ALPH_BYTES_PER_PIXEL * framePixels;
  const offset = frame.x !== 0 || frame.y !== 0 || frame.width !== header.width || frame.height !== header.height;
  if (alpha || offset) bytes += RING_ROWS * outWidth * 3;
  return bytes;
}

/**
 * Whether the decode also decodes the first frame's ALPH chunk (RGBA mode, alpha then dropped):
 * only to refuse what Pillow refuses, a lossy file whose alpha data is corrupt (Pillow decodes
 * RGBA; in RGB mode libwebp skips ALPH, and R, G, B are the same either way). It costs up to ~6
 * bytes a pixel, so it is done when that fits `budgetBytes` even with the image collected and
 * turned (2 x 3 bytes a reduced pixel): 32 MiB allows about 2.5 MP at full size, 4.4 MP at 1/5.
 * Past that the alpha is not read, and a corrupt ALPH chunk goes unnoticed where Pillow would
 * refuse the file (the colours are Pillow's either way).
 */
export function webpChecksAlpha(header: WebpHeader, scale: WebpScale, budgetBytes: number): boolean {
  if (header.frame.alphEnd === 0) return false;
  const out = Math.ceil(header.width / scale) * Math.ceil(header.height / scale);
  return webpDecodeMemory(header, scale, true) + 6 * out <= budgetBytes;
}

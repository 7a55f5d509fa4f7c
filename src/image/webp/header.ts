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
  };
}

/** libwebp's working state besides the pixel buffers (Huffman tables, row caches), rounded up. */
const FIXED_BYTES = 1024 * 1024;

/**
 * Bytes one decode takes at its peak, by our accounting: the input copied into the wasm heap,
 * libwebp's RGBA output there and embind's copy of it in JS, VP8L's own ARGB image (lossless) or
 * the alpha plane (lossy with ALPH), and the RGB result (the whole canvas for an animation).
 */
export function webpDecodeMemory(header: WebpHeader): number {
  const frame = header.frame.width * header.frame.height;
  const canvas = header.width * header.height;
  let bytes = header.frame.end + 8 * frame + 3 * canvas + FIXED_BYTES;
  if (header.lossless) bytes += 4 * frame;
  else if (header.alpha) bytes += frame;
  return bytes;
}

/**
 * PNG: our own walk of the chunks (IHDR, eXIf, completeness), a bounded inflate to measure
 * the image data, then fast-png for the pixels.
 *
 * Alpha is DROPPED, not composited: our reference preprocessing is the model zoo's PIL code,
 * `Image.open(f).convert('RGB')`, which throws the alpha channel (and tRNS) away, so a fully
 * transparent pixel keeps whatever colour it stores. Compositing over white would look nicer
 * and would no longer match the reference the models were evaluated with.
 *
 * 16-bit samples become 8-bit by their high byte, as PIL does for RGB(A) and gray+alpha. For
 * plain 16-bit grayscale PIL's convert('RGB') clips to 255 instead (an almost white image),
 * which we do not copy: the high byte is what the picture means.
 */
import { decode as fastPngDecode, type PngDataArray } from 'fast-png';
import { Unzlib } from 'fflate';
import { tooLarge, unprocessableImage } from '../errors';
import { readExifOrientation } from './exif';
import { DEFAULT_MAX_MEMORY_MB, type DecodeLimits, type ImageInfo, type RgbImage } from './types';

const GRAY = 0;
const PALETTE = 3;
const GRAY_ALPHA = 4;

const CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Readonly<Record<number, readonly number[]>> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
/** Adam7 passes: x0, y0, dx, dy. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/**
 * Inflated data beyond what the header implies that we still accept: libpng treats a little
 * trailing data as a benign error, but without a bound a small upload could inflate to
 * gigabytes inside fast-png, which keeps everything it inflates.
 */
const INFLATE_SLACK = 64 * 1024;

export interface PngHeader extends ImageInfo {
  format: 'png';
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
}

interface Chunk {
  type: string;
  /** Offsets of the chunk's data. */
  start: number;
  end: number;
}

const u32 = (b: Uint8Array, i: number): number => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;

/** The chunk at `pos`, or null when the data ends inside it. */
function chunkAt(bytes: Uint8Array, pos: number): Chunk | null {
  if (pos + 8 > bytes.length) return null;
  const length = u32(bytes, pos);
  if (length > 0x7fffffff) throw unprocessableImage(`corrupt PNG: bad chunk length at byte ${pos}`);
  const start = pos + 8;
  if (start + length + 4 > bytes.length) return null;
  const type = String.fromCharCode(bytes[pos + 4]!, bytes[pos + 5]!, bytes[pos + 6]!, bytes[pos + 7]!);
  return { type, start, end: start + length };
}

/** IHDR, plus the orientation of an eXIf chunk placed before the image data (as the spec requires). */
export function readPngHeader(bytes: Uint8Array): PngHeader {
  const ihdr = chunkAt(bytes, 8);
  if (!ihdr) throw unprocessableImage('PNG is truncated before its header');
  if (ihdr.type !== 'IHDR' || ihdr.end - ihdr.start !== 13) throw unprocessableImage('corrupt PNG: no IHDR chunk first');
  const p = ihdr.start;
  const width = u32(bytes, p);
  const height = u32(bytes, p + 4);
  const bitDepth = bytes[p + 8]!;
  const colorType = bytes[p + 9]!;
  const interlace = bytes[p + 12]!;
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    throw unprocessableImage(`corrupt PNG: bad size ${width}x${height}`);
  }
  if (!DEPTHS[colorType]?.includes(bitDepth)) {
    throw unprocessableImage(`corrupt PNG: bit depth ${bitDepth} with colour type ${colorType}`);
  }
  if (bytes[p + 10] !== 0 || bytes[p + 11] !== 0 || interlace > 1) {
    throw unprocessableImage('corrupt PNG: unknown compression, filter or interlace method');
  }

  let orientation = 1;
  for (let c = chunkAt(bytes, ihdr.end + 4); c && c.type !== 'IDAT' && c.type !== 'IEND'; c = chunkAt(bytes, c.end + 4)) {
    if (c.type === 'eXIf') {
      orientation = readExifOrientation(bytes.subarray(c.start, c.end));
      break;
    }
  }
  return { format: 'png', width, height, orientation, bitDepth, colorType, interlaced: interlace === 1 };
}

/** Bytes per scanline (without its filter byte) of a `width`-pixel row. */
const rowBytes = (h: PngHeader, width: number): number => Math.ceil((width * CHANNELS[h.colorType]! * h.bitDepth) / 8);

/** Size of the inflated image data the header implies: every scanline plus its filter byte. */
function rawSize(h: PngHeader): number {
  if (!h.interlaced) return h.height * (1 + rowBytes(h, h.width));
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    const pw = Math.ceil((h.width - x0) / dx);
    const ph = Math.ceil((h.height - y0) / dy);
    if (pw > 0 && ph > 0) total += ph * (1 + rowBytes(h, pw));
  }
  return total;
}

/**
 * fast-png's Adam7 code sizes pass rows in whole bytes per pixel, so it misreads 1/2/4-bit
 * interlaced images; we deinterlace those ourselves from the inflated data.
 */
const ownDeinterlace = (h: PngHeader): boolean => h.interlaced && h.bitDepth < 8;

/** Source samples compacted to RGB in the same buffer (see samplesToRgb). */
const compactsInPlace = (h: PngHeader): boolean => h.bitDepth >= 8 && (CHANNELS[h.colorType]! * h.bitDepth) / 8 >= 3;

/**
 * Peak bytes of a decode: fast-png holds the inflated chunks and their concatenation at once,
 * then the unfiltered pixels, then we add the RGB output unless we compact in place.
 */
function estimateBytes(h: PngHeader): number {
  const pixels = h.width * h.height;
  const raw = rawSize(h);
  const unfiltered = h.interlaced ? pixels * Math.ceil(h.bitDepth / 8) * CHANNELS[h.colorType]! : h.height * rowBytes(h, h.width);
  const rgb = compactsInPlace(h) ? 0 : pixels * 3;
  return ownDeinterlace(h) ? raw + pixels + rgb : 2 * raw + unfiltered + rgb;
}

/** Walks every chunk to IEND; the data ranges of the IDAT chunks. */
function imageData(bytes: Uint8Array, h: PngHeader): Chunk[] {
  const idats: Chunk[] = [];
  let palette = false;
  for (let pos = 8; ; ) {
    const c = chunkAt(bytes, pos);
    if (!c) throw unprocessableImage('PNG is truncated (no IEND chunk)');
    if (c.type === 'IEND') break;
    if (c.type === 'IDAT') idats.push(c);
    if (c.type === 'PLTE') palette = true;
    pos = c.end + 4;
  }
  if (idats.length === 0) throw unprocessableImage('corrupt PNG: no image data');
  if (h.colorType === PALETTE && !palette) throw unprocessableImage('corrupt PNG: palette image without PLTE');
  return idats;
}

class TooMuchData extends Error {}

/**
 * Inflates the image data once, streaming and throwing away, to prove it has the size the
 * header implies before fast-png (which keeps everything) inflates it for real: refuses both
 * short data, which fast-png would pad with black rows, and inflation bombs. With `keep`, the
 * needed bytes are kept and returned instead.
 */
function measureImageData(bytes: Uint8Array, idats: Chunk[], expected: number, keep: boolean): Uint8Array | null {
  const kept = keep ? new Uint8Array(expected) : null;
  let total = 0;
  const inflater = new Unzlib((chunk) => {
    if (kept && total < expected) kept.set(chunk.subarray(0, expected - total), total);
    total += chunk.length;
    if (total > expected + INFLATE_SLACK) throw new TooMuchData();
  });
  try {
    for (const c of idats) inflater.push(bytes.subarray(c.start, c.end), false);
    inflater.push(new Uint8Array(0), true);
  } catch (err) {
    if (err instanceof TooMuchData) throw unprocessableImage('corrupt PNG: more image data than its size allows');
    const detail = err instanceof Error ? `: ${err.message.slice(0, 60)}` : '';
    throw unprocessableImage(`corrupt PNG: bad compressed data${detail}`, err);
  }
  if (total < expected) throw unprocessableImage('PNG is truncated (image data ends early)');
  return kept;
}

/** Decodes to RGB. `header` is readPngHeader(bytes); the pixel limit has been checked. */
export function decodePng(bytes: Uint8Array, header: PngHeader, limits: DecodeLimits): RgbImage {
  const maxMemoryMB = limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB;
  const needed = estimateBytes(header);
  if (needed > maxMemoryMB * 1024 * 1024) {
    throw tooLarge(
      `PNG of ${header.width}x${header.height} needs about ${Math.ceil(needed / 2 ** 20)} MB to decode, over ${maxMemoryMB} MB`,
    );
  }
  const idats = imageData(bytes, header);
  const raw = measureImageData(bytes, idats, rawSize(header), ownDeinterlace(header));

  const { width, height } = header;
  if (raw) {
    // 1/2/4-bit interlaced gray or palette: fast-png is not used at all, so PLTE is read here.
    const lut = header.colorType === PALETTE ? paletteLut(readPlte(bytes)) : grayLut(header.bitDepth);
    return { width, height, data: indexedToRgb(deinterlaceLowDepth(raw, header), width, height, 8, lut) };
  }

  let png: { width: number; height: number; data: PngDataArray; palette?: number[][] };
  try {
    png = fastPngDecode(bytes, { checkCrc: true });
  } catch (err) {
    const detail = err instanceof Error ? `: ${err.message.slice(0, 80)}` : '';
    throw unprocessableImage(`corrupt PNG${detail}`, err);
  }
  if (png.width !== width || png.height !== height) throw unprocessableImage('corrupt PNG: decoded size does not match its header');

  let data: Uint8Array;
  if (header.colorType === PALETTE) {
    if (!png.palette) throw unprocessableImage('corrupt PNG: palette image without PLTE');
    data = indexedToRgb(asBytes(png.data), width, height, header.bitDepth, paletteLut(png.palette));
  } else if (header.bitDepth < 8) {
    data = indexedToRgb(asBytes(png.data), width, height, header.bitDepth, grayLut(header.bitDepth));
  } else {
    data = samplesToRgb(png.data, width * height, CHANNELS[header.colorType]!, header.colorType !== GRAY && header.colorType !== GRAY_ALPHA);
  }
  return { width, height, data };
}

const asBytes = (a: PngDataArray): Uint8Array => (a instanceof Uint8Array ? a : new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

/**
 * 8/16-bit gray, gray+alpha, RGB, RGBA to RGB. Alpha is dropped (see the top of the file);
 * 16-bit keeps the high byte. When a source pixel has at least 3 bytes, the output is written
 * over the source buffer: pixel p's bytes are read before its 3 output bytes are written, and
 * those end before pixel p+1's source bytes begin, so no unread sample is overwritten.
 */
function samplesToRgb(src: PngDataArray, pixels: number, channels: number, colour: boolean): Uint8Array {
  const shift = src instanceof Uint16Array ? 8 : 0;
  if (shift === 0 && channels === 3) return asBytes(src);
  const inPlace = src.BYTES_PER_ELEMENT * channels >= 3;
  const out = inPlace ? new Uint8Array(src.buffer, src.byteOffset, pixels * 3) : new Uint8Array(pixels * 3);
  for (let p = 0, s = 0, o = 0; p < pixels; p++, s += channels, o += 3) {
    const r = src[s]! >> shift;
    const g = colour ? src[s + 1]! >> shift : r;
    const b = colour ? src[s + 2]! >> shift : r;
    out[o] = r;
    out[o + 1] = g;
    out[o + 2] = b;
  }
  return out;
}

/** 3 bytes a sample value; indices past the palette's end stay black, as in PIL. */
function paletteLut(palette: readonly (readonly number[])[]): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  palette.slice(0, 256).forEach((entry, i) => lut.set(entry.slice(0, 3), i * 3));
  return lut;
}

/** 1/2/4-bit gray scaled to the full 8-bit range (1-bit: 0/255, 2-bit: x85, 4-bit: x17), as PIL does. */
function grayLut(depth: number): Uint8Array {
  const max = (1 << depth) - 1;
  const lut = new Uint8Array((max + 1) * 3);
  for (let v = 0; v <= max; v++) lut.fill((v * 255) / max, v * 3, v * 3 + 3);
  return lut;
}

function readPlte(bytes: Uint8Array): number[][] {
  for (let c = chunkAt(bytes, 8); c; c = chunkAt(bytes, c.end + 4)) {
    if (c.type !== 'PLTE') continue;
    const entries: number[][] = [];
    for (let i = c.start; i + 3 <= c.end; i += 3) entries.push([bytes[i]!, bytes[i + 1]!, bytes[i + 2]!]);
    return entries;
  }
  throw unprocessableImage('corrupt PNG: palette image without PLTE');
}

/** Rows of `depth`-bit samples, each row padded to a whole byte, through a lookup table. */
function indexedToRgb(packed: Uint8Array, width: number, height: number, depth: number, lut: Uint8Array): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  const stride = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  const maxIndex = lut.length / 3 - 1;
  let o = 0;
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const v = (packed[row + (bit >> 3)]! >> (8 - depth - (bit & 7))) & mask;
      const i = Math.min(v, maxIndex) * 3;
      out[o++] = lut[i]!;
      out[o++] = lut[i + 1]!;
      out[o++] = lut[i + 2]!;
    }
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Adam7 for 1/2/4-bit samples: unfilters each pass (a "pixel" is one byte for the filters
 * at these depths) and scatters its samples to one byte a pixel, row-major.
 */
function deinterlaceLowDepth(raw: Uint8Array, h: PngHeader): Uint8Array {
  const { width, height, bitDepth: depth } = h;
  const out = new Uint8Array(width * height);
  const mask = (1 << depth) - 1;
  let pos = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    const pw = Math.ceil((width - x0) / dx);
    const ph = Math.ceil((height - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    const n = rowBytes(h, pw);
    let prev = new Uint8Array(n);
    let cur = new Uint8Array(n);
    for (let r = 0; r < ph; r++) {
      const filter = raw[pos]!;
      const line = raw.subarray(pos + 1, pos + 1 + n);
      pos += 1 + n;
      for (let i = 0; i < n; i++) {
        const x = line[i]!;
        const a = i > 0 ? cur[i - 1]! : 0;
        const b = prev[i]!;
        const c = i > 0 ? prev[i - 1]! : 0;
        let v: number;
        if (filter === 0) v = x;
        else if (filter === 1) v = x + a;
        else if (filter === 2) v = x + b;
        else if (filter === 3) v = x + ((a + b) >> 1);
        else if (filter === 4) v = x + paeth(a, b, c);
        else throw unprocessableImage(`corrupt PNG: unknown filter ${filter}`);
        cur[i] = v;
      }
      const rowStart = (y0 + r * dy) * width;
      for (let i = 0; i < pw; i++) {
        const bit = i * depth;
        out[rowStart + x0 + i * dx] = (cur[bit >> 3]! >> (8 - depth - (bit & 7))) & mask;
      }
      [prev, cur] = [cur, prev];
    }
  }
  return out;
}

/**
 * PNG, decoded as the reference decodes it and streamed a scanline at a time.
 *
 * The reference is the model zoo's preprocessing, Pillow's `Image.open(f).convert('RGB')`,
 * with Pillow 9.4 (Debian 12's python3-pil): the zoo's accuracy was measured with it, so we
 * follow it byte for byte, quirks included (scripts/make-png-fixtures.py checks every colour
 * type, bit depth, filter and interlacing against it):
 *
 * - Alpha and tRNS are DROPPED, not composited: a fully transparent pixel keeps whatever
 *   colour it stores. Compositing over white would look nicer and match the reference less.
 * - 16-bit samples become 8-bit by their high byte (RGB, RGBA, gray+alpha), except plain
 *   16-bit grayscale: Pillow opens it as mode "I" (32-bit integers) and convert('RGB') clips
 *   each value to 0..255, so any sample >= 255 is white and a typical 16-bit gray image is
 *   almost white. We copy that: it is what the reference gave the models. (Newer Pillows
 *   open it as "I;16" and may differ; we pin 9.4.)
 * - 1/2/4-bit gray is scaled to 0..255 (x255, x85, x17).
 * - Palette entries past the end of PLTE (or all of them, with no PLTE before the image data)
 *   are Pillow's default palette, the gray ramp: index i is (i, i, i), not black. A PLTE of
 *   more than 256 entries is refused; when there are several PLTEs the last one counts.
 *
 * What Pillow accepts and refuses, and what we do (422 for every refusal):
 * - CRCs are checked for every chunk before the image data (IHDR included), as Pillow does;
 *   IDAT CRCs and those of chunks after the image are not (Pillow does not read them).
 * - A missing or cut IEND, and any bytes after IEND, are accepted when the image data is
 *   complete (Pillow does). A chunk after the image whose length runs past the end of the
 *   file is refused as truncated (so does Pillow); a malformed chunk header there ends the
 *   walk, as in Pillow.
 * - Zero-length IDATs are fine. The image data is the run of consecutive IDATs after the
 *   header chunks; an IDAT after another chunk is not part of it (Pillow calls the image
 *   truncated then, and so do we when the run ends before the image does).
 * - Unknown filter types, bad zlib data (header, codes, distances) are refused. The Adler-32
 *   of the zlib stream is verified when the stream has one; a stream cut right after the
 *   last block (no checksum, or a file cut inside it) is accepted, as Pillow does.
 * - Deliberate differences: (1) Pillow stops inflating once it has every row and pads a
 *   stream that ends early with black rows. We refuse a stream that ends early (its black
 *   rows are not in the file), and after the last row inflate at most INFLATE_SLACK more
 *   bytes: a little trailing data is accepted (libpng too calls it benign), a decompression
 *   bomb is refused early instead of inflated. Corrupt data in that tail is refused, where
 *   Pillow, having stopped reading, would not notice it. (2) readPngHeader refuses an IHDR
 *   that is not 13 bytes, a compression method other than 0 and an interlace method over 1;
 *   Pillow accepts the first two. (3) Ancillary chunks other than PLTE and tRNS are not
 *   parsed, so malformed ones that Pillow's handlers would trip over (e.g. a short gAMA) are
 *   accepted. (4) APNG: we decode the IDAT image, also when an fcTL gives it a smaller frame.
 *
 * Memory: non-interlaced images are streamed, holding two scanlines, a batch of RGB rows
 * (~64 KB) and the inflater (~170 KB): ~250 KB for a 4032x3024 RGB image, whatever its
 * content; see pngDecodeMemory (the test measures it). Adam7 images need the whole
 * image (every pass touches every part of it), held as RGB; over the budget they get 413.
 * The inflater is our own (below) because we need to pull exactly a scanline at a time
 * with bounded memory, stop at the image's end and see exactly where the zlib stream ends.
 */
import { tooLarge, unprocessableImage } from '../errors';
import { readExifOrientation } from './exif';
import { DEFAULT_MAX_MEMORY_MB, type DecodeLimits, type ImageInfo, type RgbImage, type RowSink } from './types';

const GRAY = 0;
const RGB = 2;
const PALETTE = 3;
const GRAY_ALPHA = 4;
const RGBA = 6;

export const CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
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
 * trailing data as a benign error, but a small upload must not make us inflate gigabytes.
 */
export const INFLATE_SLACK = 64 * 1024;

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

export const u32 = (b: Uint8Array, i: number): number => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;

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

// ---- memory accounting -----------------------------------------------------------------------

/** Bytes per scanline (without its filter byte) of a `width`-pixel row. */
export const rowBytes = (h: PngHeader, width: number): number => Math.ceil((width * CHANNELS[h.colorType]! * h.bitDepth) / 8);

/** RGB rows handed to the sink per call (non-interlaced): up to ~64 KB, at least one row. */
export const batchRows = (h: PngHeader): number => Math.max(1, Math.min(16, Math.floor(65536 / (h.width * 3))));

/**
 * Bytes decodePngTo allocates for this image: the inflater (window and code tables), two
 * scanlines, the palette and the RGB batch; for Adam7 the whole RGB image instead of the
 * batch. Everything it allocates is in this figure; nothing depends on the file's content.
 */
export function pngDecodeMemory(header: PngHeader): number {
  const scanlines = 2 * (rowBytes(header, header.width) + 1);
  const fixed = INFLATER_BYTES + 1024 + 4096; // + palette LUT, + small objects
  const rgb = header.interlaced ? header.width * header.height * 3 + header.width * 3 : batchRows(header) * header.width * 3;
  return fixed + scanlines + rgb;
}

const mb = (bytes: number): string => (bytes / 2 ** 20 < 10 ? (bytes / 2 ** 20).toFixed(1) : String(Math.ceil(bytes / 2 ** 20)));

export function checkMemory(header: PngHeader, needed: number, limits: DecodeLimits): void {
  const maxMemoryMB = limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB;
  if (needed <= maxMemoryMB * 2 ** 20) return;
  const size = `${header.width}x${header.height}`;
  if (header.interlaced) {
    throw tooLarge(
      `interlaced PNG of ${size}: an interlaced PNG must be held whole to decode (about ${mb(needed)} MB), ` +
        `which exceeds the decode memory budget of ${maxMemoryMB} MB`,
    );
  }
  throw tooLarge(`PNG of ${size} needs about ${mb(needed)} MB to decode, over the decode memory budget of ${maxMemoryMB} MB`);
}

// ---- chunk structure -------------------------------------------------------------------------

export interface Layout {
  /** Offset of the first IDAT chunk (the inflater walks the run from there, storing nothing). */
  idat: number;
  /** RGB of each palette index (3 bytes each): PLTE entries, then Pillow's gray ramp. */
  lut: Uint8Array | null;
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** Pillow's test for the type of the chunk at `pos`: four of [A-Za-z0-9_]. */
function validType(bytes: Uint8Array, pos: number): boolean {
  for (let i = pos + 4; i < pos + 8; i++) {
    const c = bytes[i]!;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f)) return false;
  }
  return true;
}

export const typeAt = (bytes: Uint8Array, pos: number): string =>
  String.fromCharCode(bytes[pos + 4]!, bytes[pos + 5]!, bytes[pos + 6]!, bytes[pos + 7]!);

/**
 * Walks the chunks as Pillow does: the header chunks (CRC-checked, complete) up to the first
 * IDAT, the run of IDATs, then the chunks after them up to IEND (not CRC-checked; a header
 * cut short or malformed ends the walk, a body cut short is a truncated file).
 */
export function walkChunks(bytes: Uint8Array, h: PngHeader): Layout {
  let plte: Chunk | null = null;
  let pos = 8;
  // Header chunks.
  for (;;) {
    if (pos + 8 > bytes.length) throw unprocessableImage('PNG is truncated (no image data)');
    if (!validType(bytes, pos)) throw unprocessableImage(`corrupt PNG: bad chunk type at byte ${pos}`);
    const type = typeAt(bytes, pos);
    const length = u32(bytes, pos);
    if (type === 'IDAT') break;
    if (type === 'IEND') throw unprocessableImage('corrupt PNG: no image data');
    const start = pos + 8;
    const end = start + length;
    if (end + 4 > bytes.length) throw unprocessableImage(`PNG is truncated (in its ${type} chunk)`);
    if (crc32(bytes, pos + 4, end) !== u32(bytes, end)) throw unprocessableImage(`corrupt PNG: bad CRC in its ${type} chunk`);
    if (type === 'PLTE') plte = { type, start, end };
    if (type === 'tRNS') {
      const need = h.colorType === GRAY ? 2 : h.colorType === RGB ? 6 : 0;
      if (length < need) throw unprocessableImage('corrupt PNG: tRNS chunk too short');
    }
    pos = end + 4;
  }
  // The IDAT run; the last one may run past the end of the file (Pillow reads what is there).
  const idat = pos;
  while (pos + 8 <= bytes.length && typeAt(bytes, pos) === 'IDAT') pos += 12 + u32(bytes, pos);
  // The chunks after the image data.
  while (pos + 8 <= bytes.length && validType(bytes, pos)) {
    const type = typeAt(bytes, pos);
    if (type === 'IEND') break;
    const end = pos + 8 + u32(bytes, pos);
    if (end > bytes.length) throw unprocessableImage(`PNG is truncated (in its ${type} chunk after the image data)`);
    pos = end + 4;
  }

  let lut: Uint8Array | null = null;
  if (h.colorType === PALETTE) {
    lut = new Uint8Array(256 * 3);
    for (let i = 0; i < 256; i++) lut.fill(i, i * 3, i * 3 + 3);
    if (plte) {
      const entries = Math.floor((plte.end - plte.start) / 3);
      if (entries > 256) throw unprocessableImage(`corrupt PNG: palette of ${entries} entries (over 256)`);
      lut.set(bytes.subarray(plte.start, plte.start + entries * 3));
    }
  } else if (h.colorType === GRAY && h.bitDepth < 8) {
    const max = (1 << h.bitDepth) - 1;
    lut = new Uint8Array(256 * 3);
    for (let v = 0; v <= max; v++) lut.fill((v * 255) / max, v * 3, v * 3 + 3);
  }
  return { idat, lut };
}

// ---- scanlines -------------------------------------------------------------------------------

/**
 * Undoes the filter of `cur` (filter byte at 0, then `n` bytes) against `prev` (same layout,
 * zeros for the first row of an image or pass). `bpp`: bytes per complete pixel, at least 1.
 */
export function unfilter(cur: Uint8Array, prev: Uint8Array, n: number, bpp: number, row: number): void {
  const filter = cur[0]!;
  const end = n + 1;
  switch (filter) {
    case 0:
      return;
    case 1:
      for (let i = bpp + 1; i < end; i++) cur[i] = cur[i]! + cur[i - bpp]!;
      return;
    case 2:
      for (let i = 1; i < end; i++) cur[i] = cur[i]! + prev[i]!;
      return;
    case 3: {
      let i = 1;
      for (; i <= bpp && i < end; i++) cur[i] = cur[i]! + (prev[i]! >> 1);
      for (; i < end; i++) cur[i] = cur[i]! + ((cur[i - bpp]! + prev[i]!) >> 1);
      return;
    }
    case 4: {
      let i = 1;
      for (; i <= bpp && i < end; i++) cur[i] = cur[i]! + prev[i]!;
      for (; i < end; i++) {
        const a = cur[i - bpp]!;
        const b = prev[i]!;
        const c = prev[i - bpp]!;
        // |p - a|, |p - b|, |p - c| for p = a + b - c, without Math.abs.
        let pa = b - c;
        let pb = a - c;
        let pc = pa + pb;
        if (pa < 0) pa = -pa;
        if (pb < 0) pb = -pb;
        if (pc < 0) pc = -pc;
        cur[i] = cur[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
      return;
    }
    default:
      throw unprocessableImage(`corrupt PNG: unknown filter type ${filter} in scanline ${row}`);
  }
}

/**
 * One unfiltered scanline (samples from src[1]) of `width` pixels to RGB at out[o], every
 * `step`-th pixel (step 1, or the Adam7 column step when scattering into the whole image).
 */
export function toRgb(h: PngHeader, lut: Uint8Array | null, src: Uint8Array, width: number, out: Uint8Array, o: number, step: number): void {
  const depth = h.bitDepth;
  const ct = h.colorType;
  const stride = step * 3;
  if (lut) {
    if (depth === 8) {
      for (let x = 0, s = 1; x < width; x++, s++, o += stride) {
        const i = src[s]! * 3;
        out[o] = lut[i]!;
        out[o + 1] = lut[i + 1]!;
        out[o + 2] = lut[i + 2]!;
      }
      return;
    }
    const mask = (1 << depth) - 1;
    const perByte = 8 / depth;
    for (let x = 0; x < width; x++, o += stride) {
      const shift = 8 - depth * ((x % perByte) + 1);
      const i = ((src[1 + Math.floor(x / perByte)]! >> shift) & mask) * 3;
      out[o] = lut[i]!;
      out[o + 1] = lut[i + 1]!;
      out[o + 2] = lut[i + 2]!;
    }
    return;
  }
  if (ct === GRAY) {
    if (depth === 8) {
      for (let x = 0, s = 1; x < width; x++, s++, o += stride) {
        const v = src[s]!;
        out[o] = v;
        out[o + 1] = v;
        out[o + 2] = v;
      }
    } else {
      // Mode "I" clipped to 0..255 (see the top of the file).
      for (let x = 0, s = 1; x < width; x++, s += 2, o += stride) {
        const v = src[s]! !== 0 ? 255 : src[s + 1]!;
        out[o] = v;
        out[o + 1] = v;
        out[o + 2] = v;
      }
    }
    return;
  }
  if (ct === GRAY_ALPHA) {
    const bpp = depth === 8 ? 2 : 4;
    for (let x = 0, s = 1; x < width; x++, s += bpp, o += stride) {
      const v = src[s]!;
      out[o] = v;
      out[o + 1] = v;
      out[o + 2] = v;
    }
    return;
  }
  // RGB, RGBA: the first (high) byte of each of the first three samples.
  const bps = depth >> 3;
  const bpp = bps * (ct === RGBA ? 4 : 3);
  if (bpp === 3 && step === 1) {
    out.set(src.subarray(1, 1 + width * 3), o);
    return;
  }
  for (let x = 0, s = 1; x < width; x++, s += bpp, o += stride) {
    out[o] = src[s]!;
    out[o + 1] = src[s + bps]!;
    out[o + 2] = src[s + 2 * bps]!;
  }
}

// ---- decoding --------------------------------------------------------------------------------

/** Streams the image (stored orientation) into sink; returns its size. */
export function decodePngTo(
  bytes: Uint8Array,
  header: PngHeader,
  sink: RowSink,
  limits: DecodeLimits,
): { width: number; height: number } {
  checkMemory(header, pngDecodeMemory(header), limits);
  decodeRows(bytes, header, sink);
  return { width: header.width, height: header.height };
}

/** Collected into one RgbImage (as today's decodePng). */
export function decodePng(bytes: Uint8Array, header: PngHeader, limits: DecodeLimits): RgbImage {
  const { width, height } = header;
  // The collected image comes on top of the streaming figure; Adam7 already holds it.
  checkMemory(header, pngDecodeMemory(header) + (header.interlaced ? 0 : width * height * 3), limits);
  let data: Uint8Array | null = header.interlaced ? null : new Uint8Array(width * height * 3);
  const whole = decodeRows(bytes, header, {
    write(rows, y0, count) {
      data?.set(rows.subarray(0, count * width * 3), y0 * width * 3);
    },
  });
  data ??= whole;
  if (!data) throw unprocessableImage('corrupt PNG: no pixels'); // not reached: Adam7 returns its image
  return { width, height, data };
}

/** Decodes into sink; for Adam7 also returns the whole RGB image it wrote from. */
function decodeRows(bytes: Uint8Array, h: PngHeader, sink: RowSink): Uint8Array | null {
  const layout = walkChunks(bytes, h);
  const inflater = new Inflater(bytes, layout.idat);
  const { width, height } = h;
  const bpp = Math.max(1, (CHANNELS[h.colorType]! * h.bitDepth) >> 3);
  const full = rowBytes(h, width) + 1;
  let prev = new Uint8Array(full);
  let cur = new Uint8Array(full);
  const rowRgb = width * 3;
  let whole: Uint8Array | null = null;

  if (!h.interlaced) {
    const batch = batchRows(h);
    const out = new Uint8Array(batch * rowRgb);
    let y0 = 0;
    let k = 0;
    for (let y = 0; y < height; y++) {
      inflater.readExactly(cur, full);
      unfilter(cur, prev, full - 1, bpp, y);
      toRgb(h, layout.lut, cur, width, out, k * rowRgb, 1);
      [prev, cur] = [cur, prev];
      if (++k === batch || y === height - 1) {
        sink.write(out, y0, k);
        y0 = y + 1;
        k = 0;
      }
    }
  } else {
    whole = new Uint8Array(width * height * 3);
    for (const [x0, py0, dx, dy] of ADAM7) {
      const pw = Math.ceil((width - x0) / dx);
      const ph = Math.ceil((height - py0) / dy);
      if (pw <= 0 || ph <= 0) continue;
      const n = rowBytes(h, pw) + 1;
      prev.fill(0, 0, n);
      for (let r = 0; r < ph; r++) {
        const y = py0 + r * dy;
        inflater.readExactly(cur, n);
        unfilter(cur, prev, n - 1, bpp, y);
        toRgb(h, layout.lut, cur, pw, whole, (y * width + x0) * 3, dx);
        [prev, cur] = [cur, prev];
      }
    }
  }
  inflater.finish();
  if (whole) sink.write(whole, 0, height);
  return whole;
}

// ---- inflate ---------------------------------------------------------------------------------

/** Window: 32 KB of history plus room for a batch of output; a symbol writes at most 258 bytes. */
const HISTORY = 32768;
const WINDOW = HISTORY + 131072 + 258;
const FILL_LIMIT = WINDOW - 258;
/** Table sizes of zlib's inftrees.h (ENOUGH_LENS, ENOUGH_DISTS) for 9- and 6-bit root tables. */
const LIT_ROOT = 9;
const DIST_ROOT = 6;
const LIT_TABLE = 852;
const DIST_TABLE = 592;
const INFLATER_BYTES = WINDOW + 4 * (LIT_TABLE + DIST_TABLE + 128) + 320 + 64;

// Root tables of 9 and 6 bits, and 7 for the code-length code: DEPTH covers the largest.
const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193,
  12289, 16385, 24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CODE_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

class BadData extends Error {}

/**
 * Canonical Huffman decoding table for `n` code lengths, zlib style: a root table indexed by
 * the next `root` bits; entries are (symbol << 8) | length, or links (offset << 8) | 16 | bits
 * to a second-level table for longer codes. Unused entries are 0 (an invalid code). Refuses
 * over-subscribed codes and incomplete ones (but for a single code of length 1), as zlib does.
 */
/** Scratch space of buildTable (synchronous, so one set serves every decode). */
const COUNT = new Uint16Array(16);
const NEXT = new Uint16Array(16);
const CODES_OF = new Int32Array(320);
const DEPTH = new Uint8Array(1 << 9);

function buildTable(lengths: Uint8Array, n: number, root: number, table: Int32Array, lengthCodes = false): void {
  const count = COUNT.fill(0);
  for (let i = 0; i < n; i++) count[lengths[i]!]!++;
  count[0] = 0;
  let max = 15;
  while (max > 0 && count[max] === 0) max--;
  table.fill(0);
  if (max === 0) return; // no codes: everything decodes as invalid
  let left = 1;
  for (let len = 1; len <= 15; len++) {
    left = (left << 1) - count[len]!;
    if (left < 0) throw new BadData('over-subscribed code');
  }
  if (left > 0 && (lengthCodes || max !== 1)) throw new BadData('incomplete code');
  const next = NEXT;
  for (let len = 1, code = 0; len <= 15; len++) {
    code = (code + count[len - 1]!) << 1;
    next[len] = code;
  }
  const rootSize = 1 << root;
  const rootMask = rootSize - 1;
  const codes = CODES_OF;
  const depth = DEPTH.fill(0, 0, rootSize);
  for (let s = 0; s < n; s++) {
    const len = lengths[s]!;
    if (!len) continue;
    let c = next[len]!++;
    let r = 0;
    for (let i = 0; i < len; i++, c >>= 1) r = (r << 1) | (c & 1);
    codes[s] = r;
    if (len > root) depth[r & rootMask] = Math.max(depth[r & rootMask]!, len - root);
  }
  let pos = rootSize;
  for (let p = 0; p < rootSize; p++) {
    const d = depth[p]!;
    if (!d) continue;
    if (pos + (1 << d) > table.length) throw new BadData('code table overflow');
    table[p] = (pos << 8) | 16 | d;
    pos += 1 << d;
  }
  for (let s = 0; s < n; s++) {
    const len = lengths[s]!;
    if (!len) continue;
    const r = codes[s]!;
    const entry = (s << 8) | len;
    if (len <= root) {
      for (let i = r; i < rootSize; i += 1 << len) table[i] = entry;
    } else {
      const link = table[r & rootMask]!;
      const base = link >>> 8;
      const size = 1 << (link & 15);
      for (let i = r >>> root; i < size; i += 1 << (len - root)) table[base + i] = entry;
    }
  }
}

const FIXED_LIT = new Int32Array(1 << LIT_ROOT);
const FIXED_DIST = new Int32Array(1 << DIST_ROOT);
{
  const l = new Uint8Array(288);
  l.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
  buildTable(l, 288, LIT_ROOT, FIXED_LIT);
  buildTable(new Uint8Array(32).fill(5), 32, DIST_ROOT, FIXED_DIST);
}

const HEADER = 0;
const STORED = 1;
const CODES = 2;
const END = 3;

/**
 * A zlib inflater pulling from the data of the run of IDAT chunks at `pos` (the last one may
 * be cut by the end of the file), with a fixed window: the reader asks for bytes, and it
 * inflates up to ~128 KB ahead. Past the end of the input its bit reader yields zeros and
 * counts them, so truncation is found without a check per bit.
 */
class Inflater {
  /** Offset of the chunk after the current IDAT. */
  private nextChunk: number;
  private ip: number;
  private iend: number;
  private bitbuf = 0;
  private bitcnt = 0;
  /** Zero bytes fed to the bit reader past the end of the input. */
  private overrun = 0;
  private readonly win = new Uint8Array(WINDOW);
  private wpos = 0;
  private rpos = 0;
  private mode = HEADER;
  private last = false;
  private stored = 0;
  private lit: Int32Array = FIXED_LIT;
  private dist: Int32Array = FIXED_DIST;
  private readonly litTable = new Int32Array(LIT_TABLE);
  private readonly distTable = new Int32Array(DIST_TABLE);
  private readonly lens = new Uint8Array(320);
  private readonly clTable = new Int32Array(128);
  private adlerA = 1;
  private adlerB = 0;
  private total = 0;
  private headerRead = false;
  /** The input ran out before the stream's end. */
  private inputEnded = false;

  constructor(
    private readonly bytes: Uint8Array,
    pos: number,
  ) {
    this.ip = this.iend = this.nextChunk = pos;
  }

  /** The next input byte, from the next IDAT of the run if need be; 0 (counted) past the end. */
  private nextByte(): number {
    const bytes = this.bytes;
    while (this.ip >= this.iend) {
      const pos = this.nextChunk;
      if (pos + 8 > bytes.length || typeAt(bytes, pos) !== 'IDAT') {
        this.overrun++;
        if (this.overrun > 8) throw new Truncated();
        return 0;
      }
      const length = u32(bytes, pos);
      this.ip = pos + 8;
      this.iend = Math.min(this.ip + length, bytes.length);
      this.nextChunk = this.ip + length + 4;
    }
    return bytes[this.ip++]!;
  }

  private bits(n: number): number {
    while (this.bitcnt < n) {
      this.bitbuf |= this.nextByte() << this.bitcnt;
      this.bitcnt += 8;
    }
    const v = this.bitbuf & ((1 << n) - 1);
    this.bitbuf >>>= n;
    this.bitcnt -= n;
    return v;
  }

  /** Whether more bits were consumed than the input holds. */
  private overran(): boolean {
    return this.overrun * 8 > this.bitcnt;
  }

  /** Fills dst[0, n) or throws: the image data must hold every scanline. */
  readExactly(dst: Uint8Array, n: number): void {
    let off = 0;
    while (off < n) {
      if (this.rpos === this.wpos) {
        if (this.inputEnded) throw unprocessableImage('PNG is truncated (image data ends early)');
        if (this.mode === END) throw unprocessableImage('corrupt PNG: image data ends early (its zlib stream ends before the last row)');
        this.fill();
        continue;
      }
      const k = Math.min(n - off, this.wpos - this.rpos);
      dst.set(this.win.subarray(this.rpos, this.rpos + k), off);
      this.rpos += k;
      off += k;
    }
  }

  /**
   * After the last row: inflates what is left, up to INFLATE_SLACK bytes (refused beyond),
   * and checks the Adler-32 if the stream ends with one. Input that runs out first is fine:
   * Pillow stops reading at the last row.
   */
  finish(): void {
    let extra = this.wpos - this.rpos;
    for (;;) {
      if (extra > INFLATE_SLACK) throw unprocessableImage('corrupt PNG: more image data than its size allows');
      if (this.mode === END || this.inputEnded) return;
      this.rpos = this.wpos;
      this.fill();
      extra += this.wpos - this.rpos;
    }
  }

  /**
   * Inflates into the window until it is full, the stream ends or the input runs out (then
   * `inputEnded`, with only what real input decodes to in the window).
   */
  private fill(): void {
    if (this.wpos > HISTORY) {
      // Keep the last 32 KB as history; the reader has taken everything before.
      this.win.copyWithin(0, this.wpos - HISTORY, this.wpos);
      this.wpos = this.rpos = HISTORY;
    }
    const start = this.wpos;
    try {
      if (!this.headerRead) {
        const cmf = this.bits(8);
        const flg = this.bits(8);
        if (this.overran()) throw new Truncated();
        if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | flg) % 31 !== 0) throw new BadData('bad zlib header');
        if (flg & 0x20) throw new BadData('preset dictionary');
        this.headerRead = true;
      }
      while (this.wpos < FILL_LIMIT && this.mode !== END) {
        if (this.mode === HEADER) this.blockHeader();
        else if (this.mode === STORED) this.copyStored();
        else this.decodeCodes();
      }
    } catch (err) {
      if (err instanceof Truncated) this.inputEnded = true;
      else if (err instanceof BadData) throw unprocessableImage(`corrupt PNG: bad compressed image data (${err.message})`);
      else throw err;
    }
    this.adler(start, this.wpos);
    if (this.mode === END) this.checkAdler();
  }

  private blockHeader(): void {
    if (this.last) {
      this.mode = END;
      return;
    }
    this.last = this.bits(1) === 1;
    const type = this.bits(2);
    if (type === 0) {
      this.bitbuf >>>= this.bitcnt & 7;
      this.bitcnt -= this.bitcnt & 7;
      const len = this.bits(16);
      const nlen = this.bits(16);
      if (this.overran()) throw new Truncated();
      if ((len ^ 0xffff) !== nlen) throw new BadData('stored block length');
      this.stored = len;
      this.mode = STORED;
    } else if (type === 1) {
      this.lit = FIXED_LIT;
      this.dist = FIXED_DIST;
      this.mode = CODES;
    } else if (type === 2) {
      this.dynamicTables();
      this.mode = CODES;
    } else {
      throw new BadData('block type 3');
    }
  }

  private dynamicTables(): void {
    const nlit = this.bits(5) + 257;
    const ndist = this.bits(5) + 1;
    const nclen = this.bits(4) + 4;
    if (nlit > 286 || ndist > 30) throw new BadData('too many length or distance codes');
    const lens = this.lens;
    lens.fill(0, 0, 19);
    for (let i = 0; i < nclen; i++) lens[CODE_ORDER[i]!] = this.bits(3);
    if (this.overran()) throw new Truncated();
    const clTable = this.clTable;
    buildTable(lens, 19, 7, clTable, true);
    const n = nlit + ndist;
    lens.fill(0);
    for (let i = 0; i < n; ) {
      while (this.bitcnt < 7) {
        this.bitbuf |= this.nextByte() << this.bitcnt;
        this.bitcnt += 8;
      }
      const e = clTable[this.bitbuf & 127]!;
      const len = e & 15;
      if (!len) throw new BadData('bad code lengths code');
      this.bitbuf >>>= len;
      this.bitcnt -= len;
      const sym = e >>> 8;
      if (sym < 16) {
        lens[i++] = sym;
        continue;
      }
      let value = 0;
      let repeat: number;
      if (sym === 16) {
        if (i === 0) throw new BadData('repeat with no first length');
        value = lens[i - 1]!;
        repeat = 3 + this.bits(2);
      } else if (sym === 17) repeat = 3 + this.bits(3);
      else repeat = 11 + this.bits(7);
      if (i + repeat > n) throw new BadData('too many code lengths');
      lens.fill(value, i, i + repeat);
      i += repeat;
      if (this.overran()) throw new Truncated();
    }
    if (this.overran()) throw new Truncated();
    if (!lens[256]) throw new BadData('no end-of-block code');
    buildTable(lens, nlit, LIT_ROOT, this.litTable);
    buildTable(lens.subarray(nlit, n), ndist, DIST_ROOT, this.distTable);
    this.lit = this.litTable;
    this.dist = this.distTable;
  }

  private copyStored(): void {
    const win = this.win;
    let k = Math.min(this.stored, WINDOW - this.wpos);
    this.stored -= k;
    // Whole bytes left in the bit buffer come first.
    while (k > 0 && this.bitcnt >= 8) {
      win[this.wpos++] = this.bitbuf & 0xff;
      this.bitbuf >>>= 8;
      this.bitcnt -= 8;
      k--;
    }
    while (k > 0) {
      if (this.ip >= this.iend) {
        const b = this.nextByte();
        if (this.overrun) throw new Truncated();
        win[this.wpos++] = b;
        k--;
        continue;
      }
      const take = Math.min(k, this.iend - this.ip);
      win.set(this.bytes.subarray(this.ip, this.ip + take), this.wpos);
      this.ip += take;
      this.wpos += take;
      k -= take;
    }
    if (this.stored === 0) this.mode = HEADER;
  }

  /** The hot loop: literals and matches until the window is full or the block ends. */
  private decodeCodes(): void {
    const win = this.win;
    const lit = this.lit;
    const dist = this.dist;
    const bytes = this.bytes;
    let bitbuf = this.bitbuf;
    let bitcnt = this.bitcnt;
    let ip = this.ip;
    let iend = this.iend;
    let wpos = this.wpos;
    /** Zero bytes read past the end of the input: a symbol using any of them is not data. */
    let phantom = this.overrun;
    try {
      while (wpos < FILL_LIMIT) {
        while (bitcnt < 24) {
          let b: number;
          if (ip < iend) b = bytes[ip++]!;
          else {
            this.ip = ip;
            b = this.nextByte();
            ip = this.ip;
            iend = this.iend;
            phantom = this.overrun;
          }
          bitbuf |= b << bitcnt;
          bitcnt += 8;
        }
        let e = lit[bitbuf & 511]!;
        if (e & 16) e = lit[(e >>> 8) + ((bitbuf >>> LIT_ROOT) & ((1 << (e & 15)) - 1))]!;
        let len = e & 15;
        if (len === 0) throw new BadData('invalid literal/length code');
        bitbuf >>>= len;
        bitcnt -= len;
        if (phantom !== 0 && phantom * 8 > bitcnt) throw new Truncated();
        let sym = e >>> 8;
        if (sym < 256) {
          win[wpos++] = sym;
          continue;
        }
        if (sym === 256) {
          this.mode = HEADER;
          break;
        }
        sym -= 257;
        if (sym >= 29) throw new BadData('invalid literal/length code');
        let length = LEN_BASE[sym]!;
        const lx = LEN_EXTRA[sym]!;
        if (lx) {
          length += bitbuf & ((1 << lx) - 1);
          bitbuf >>>= lx;
          bitcnt -= lx;
        }
        while (bitcnt < 24) {
          let b: number;
          if (ip < iend) b = bytes[ip++]!;
          else {
            this.ip = ip;
            b = this.nextByte();
            ip = this.ip;
            iend = this.iend;
            phantom = this.overrun;
          }
          bitbuf |= b << bitcnt;
          bitcnt += 8;
        }
        e = dist[bitbuf & 63]!;
        if (e & 16) e = dist[(e >>> 8) + ((bitbuf >>> DIST_ROOT) & ((1 << (e & 15)) - 1))]!;
        len = e & 15;
        if (len === 0) throw new BadData('invalid distance code');
        bitbuf >>>= len;
        bitcnt -= len;
        sym = e >>> 8;
        if (sym >= 30) throw new BadData('invalid distance code');
        let d = DIST_BASE[sym]!;
        const dx = DIST_EXTRA[sym]!;
        if (dx) {
          if (bitcnt < dx) {
            this.ip = ip;
            this.bitbuf = bitbuf;
            this.bitcnt = bitcnt;
            while (this.bitcnt < dx) {
              this.bitbuf |= this.nextByte() << this.bitcnt;
              this.bitcnt += 8;
            }
            bitbuf = this.bitbuf;
            bitcnt = this.bitcnt;
            ip = this.ip;
            iend = this.iend;
            phantom = this.overrun;
          }
          d += bitbuf & ((1 << dx) - 1);
          bitbuf >>>= dx;
          bitcnt -= dx;
        }
        if (phantom !== 0 && phantom * 8 > bitcnt) throw new Truncated();
        if (d > wpos) throw new BadData('distance too far back');
        let s = wpos - d;
        const stop = wpos + length;
        while (wpos < stop) win[wpos++] = win[s++]!;
      }
    } finally {
      this.bitbuf = bitbuf;
      this.bitcnt = bitcnt;
      this.ip = ip;
      this.wpos = wpos;
    }
  }

  private adler(start: number, end: number): void {
    const win = this.win;
    let a = this.adlerA;
    let b = this.adlerB;
    for (let i = start; i < end; ) {
      const stop = Math.min(end, i + 5552);
      for (; i < stop; i++) {
        a += win[i]!;
        b += a;
      }
      a %= 65521;
      b %= 65521;
    }
    this.adlerA = a;
    this.adlerB = b;
    this.total += end - start;
  }

  /** At the end of the stream: the checksum, if the input still holds its 4 bytes. */
  private checkAdler(): void {
    this.bitbuf >>>= this.bitcnt & 7;
    this.bitcnt -= this.bitcnt & 7;
    let sum = 0;
    try {
      for (let i = 0; i < 4; i++) {
        const b = this.bits(8);
        if (this.overran()) return; // cut before its checksum: accepted, as Pillow does
        sum = sum * 256 + b;
      }
    } catch (err) {
      if (err instanceof Truncated) return;
      throw err;
    }
    if (sum !== ((this.adlerB << 16) | this.adlerA) >>> 0) {
      throw unprocessableImage('corrupt PNG: image data checksum (Adler-32) mismatch');
    }
  }
}

/** Internal: the bit reader ran past the end of the input. */
class Truncated extends Error {}

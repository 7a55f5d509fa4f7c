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
 * (~64 KB) and the inflater (256 KB): ~340 KB for a 4032x3024 RGB image, whatever its
 * content; see pngDecodeMemory (the test measures it). Adam7 images need the whole
 * image (every pass touches every part of it), held as RGB; over the budget they get 413.
 * The inflater is zlib itself, built to wasm with the unfiltering beside it (./png/wasm-rows.ts),
 * pulled a scanline at a time; our own JS inflater and unfilter (./png/js-rows.ts) stand in
 * where the .wasm module is not loaded.
 */
import { tooLarge, unprocessableImage } from '../errors';
import { readExifOrientation } from './exif';
import { JS_INFLATER_BYTES, JsRows } from './png/js-rows';
import { typeAt, u32, type RowReader } from './png/rows';
import { pngRowsModule, WASM_ROWS_BASE_BYTES, WasmRows } from './png/wasm-rows';
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
 * Bytes decodePngTo allocates for this image: the inflater (the larger of the two, so that the
 * figure does not depend on which one runs; the wasm module's base memory, one per isolate), two
 * scanlines, the palette and the RGB batch; for Adam7 the whole RGB image instead of the
 * batch. Everything it allocates is in this figure; nothing depends on the file's content.
 */
export function pngDecodeMemory(header: PngHeader): number {
  const scanlines = 2 * (rowBytes(header, header.width) + 1);
  const fixed = Math.max(JS_INFLATER_BYTES, WASM_ROWS_BASE_BYTES) + 1024 + 4096; // + palette LUT, + small objects
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

let rowsChoice: 'auto' | 'wasm' | 'js' = 'auto';

/**
 * Pins the row reader (tests and the benchmark compare the two): 'auto' is the wasm module
 * (zlib) where it loaded, else our JS inflater and unfilter. Returns the previous choice.
 */
export function usePngRows(kind: 'auto' | 'wasm' | 'js'): 'auto' | 'wasm' | 'js' {
  const previous = rowsChoice;
  rowsChoice = kind;
  return previous;
}

function rowReader(bytes: Uint8Array, idat: number, rowBytes: number, bpp: number): RowReader {
  const module = rowsChoice === 'js' ? null : pngRowsModule();
  if (module) return new WasmRows(bytes, idat, rowBytes, bpp, module);
  if (rowsChoice === 'wasm') throw new Error('PNG: the png_rows .wasm module did not load (in Node, import models/src/node-wasm.ts first)');
  return new JsRows(bytes, idat, rowBytes, bpp);
}

/** Decodes into sink; for Adam7 also returns the whole RGB image it wrote from. */
function decodeRows(bytes: Uint8Array, h: PngHeader, sink: RowSink): Uint8Array | null {
  const layout = walkChunks(bytes, h);
  const { width, height } = h;
  const bpp = Math.max(1, (CHANNELS[h.colorType]! * h.bitDepth) >> 3);
  const full = rowBytes(h, width) + 1;
  const rows = rowReader(bytes, layout.idat, full, bpp);
  try {
    const rowRgb = width * 3;
    let whole: Uint8Array | null = null;

    if (!h.interlaced) {
      const batch = batchRows(h);
      const out = new Uint8Array(batch * rowRgb);
      let y0 = 0;
      let k = 0;
      for (let y = 0; y < height; y++) {
        toRgb(h, layout.lut, rows.row(full, y), width, out, k * rowRgb, 1);
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
        rows.pass(n);
        for (let r = 0; r < ph; r++) {
          const y = py0 + r * dy;
          toRgb(h, layout.lut, rows.row(n, y), pw, whole, (y * width + x0) * 3, dx);
        }
      }
    }
    rows.finish();
    if (whole) sink.write(whole, 0, height);
    return whole;
  } finally {
    rows.close();
  }
}


/**
 * GIF, first frame only, decoded the way the reference decodes it: Pillow 9.4's GifImagePlugin
 * and its C LZW decoder (libImaging/GifDecode.c), then `convert('RGB')`. Byte for byte, including
 * Pillow's quirks, because the reference is what the models were evaluated with:
 *
 * - The image is the logical screen, enlarged to hold the first frame when the frame reaches past
 *   it (Pillow does the same when it opens the file). Pixels outside the frame's rectangle are
 *   colour index 0, or the frame's transparency index when its Graphic Control Extension has one
 *   (Pillow fills the canvas with it); transparency is otherwise ignored (convert('RGB') drops it).
 * - Colours: the frame's colour table (local, else global) over a grey ramp: an index past the end
 *   of a short table, or every index when there is no table, or a table that is itself the grey
 *   ramp (Pillow then opens the frame as "L"), is grey (i, i, i).
 * - LZW as GifDecode.c does it: minimum code size 0..12 (12 is not in the spec, 0 and 1 are
 *   degenerate, and all three decode as Pillow decodes them), deferred clear, the 4096-code table
 *   that stops growing when full, KwKwK. An end code before the frame is full does not end the
 *   frame: Pillow returns to its read loop and goes on decoding whatever follows (the next
 *   blocks of the file, parsed as sub-blocks), and calls the file truncated when a read finds
 *   nothing left. Its reads are 64 KiB (ImageFile.MAXBLOCK), which decides when that happens, so
 *   they are modelled too.
 * - A frame at x = 0 with width 0 decodes over the whole image (libImaging's setimage treats the
 *   extents (0, y0, 0, y1) as "no extents"); any other empty frame is refused.
 *
 * Everything Pillow refuses (not opened, or failed on load) is a 422 here; too many pixels or too
 * much memory is a 413 before anything is allocated. Work is linear in the file size plus the
 * pixel count: no input can make the decoder loop.
 */
import { tooLarge, unprocessableImage } from '../errors';
import { DEFAULT_MAX_MEMORY_MB, type DecodeLimits, type ImageInfo, type RgbImage } from './types';

export interface GifHeader extends ImageInfo {
  format: 'gif';
  /** The logical screen as the header states it (width/height may be larger: see above). */
  screenWidth: number;
  screenHeight: number;
  /** The first frame's image descriptor. */
  frameLeft: number;
  frameTop: number;
  frameWidth: number;
  frameHeight: number;
  interlaced: boolean;
  /** The colour table the first frame uses (local, else global), or null for the grey ramp. */
  palette: Uint8Array | null;
  /** Transparency index of the first frame's Graphic Control Extension, or null. */
  transparency: number | null;
  /** LZW minimum code size (the byte after the descriptor and local table). */
  lzwMinCodeSize: number;
  /** Offset of the first data sub-block. */
  dataOffset: number;
}

/** ImageFile.MAXBLOCK: the size of Pillow's reads while decoding. */
const PILLOW_READ = 65536;
/** GifDecode.c's GIFTABLE and GIFBUFFER. */
const TABLE = 4096;
const BUFFER = 4096;
/** Our own fixed allocations besides the RGB output (tables, colour LUT), rounded up. */
const FIXED_BYTES = 64 * 1024;

const u16 = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8);

const refuse = (what: string) => unprocessableImage(`corrupt GIF: ${what}`);

/** Pillow's _is_palette_needed: false when the table is the grey ramp (entry i = (i, i, i)). */
function paletteNeeded(p: Uint8Array): boolean {
  for (let i = 0; i < p.length; i += 3) {
    const v = i / 3;
    // Chained comparison as Python evaluates it: stop at the first mismatch.
    if (p[i] !== v) return true;
    if (i + 1 >= p.length || p[i + 1] !== v) return true;
    if (i + 2 >= p.length || p[i + 2] !== v) return true;
  }
  return false;
}

/**
 * The logical screen, the first frame's descriptor, colour table and transparency, walking the
 * blocks before the first image exactly as Pillow's GifImagePlugin._open does (and refusing what
 * it refuses). Extensions are skipped by their sub-blocks; bytes that start no block are ignored.
 */
export function readGifHeader(bytes: Uint8Array): GifHeader {
  const sig = String.fromCharCode(...bytes.subarray(0, 6));
  if (sig !== 'GIF87a' && sig !== 'GIF89a') throw unprocessableImage('not a GIF file');
  if (bytes.length < 13) throw refuse('truncated in the logical screen descriptor');
  const screenWidth = u16(bytes, 6);
  const screenHeight = u16(bytes, 8);
  const screenFlags = bytes[10]!;
  let pos = 13;
  const read = (n: number): Uint8Array => {
    const out = bytes.subarray(pos, Math.min(bytes.length, pos + n));
    pos += out.length;
    return out;
  };
  const readByte = (): number => (pos < bytes.length ? bytes[pos++]! : -1);
  /** One sub-block: null for a terminator (or the end of the file), else its data, maybe short. */
  const data = (): Uint8Array | null => {
    const size = readByte();
    return size > 0 ? read(size) : null;
  };
  const nonEmpty = (b: Uint8Array | null): b is Uint8Array => b !== null && b.length > 0;

  let globalPalette: Uint8Array | null = null;
  if (screenFlags & 0x80) {
    const p = read(3 << ((screenFlags & 7) + 1));
    if (paletteNeeded(p)) globalPalette = p;
  }

  let s = readByte();
  if (s === -1 || s === 0x3b) throw refuse('no image before the trailer');
  let transparency: number | null = null;
  let descriptor: Uint8Array | null = null;
  let localPalette: Uint8Array | null | undefined; // undefined: none; null: present but the grey ramp
  let lzwMinCodeSize = 0;
  for (;;) {
    if (s === -2) s = readByte();
    if (s === -1 || s === 0x3b) break;
    if (s === 0x21) {
      const label = readByte();
      let block = data();
      if (label === -1) throw refuse('truncated in an extension');
      if (label === 0xf9) {
        // Graphic Control Extension: flags, delay (2 bytes), transparency index.
        if (!nonEmpty(block)) throw refuse('empty graphic control extension');
        if (block[0]! & 1) {
          if (block.length < 4) throw refuse('short graphic control extension');
          transparency = block[3]!;
        }
        if (block.length < 3) throw refuse('short graphic control extension');
      } else if (label === 0xfe) {
        // Comment: its sub-blocks, up to the terminator.
        while (nonEmpty(block)) block = data();
        s = -2;
        continue;
      } else if (label === 0xff) {
        // Application extension (of the first frame): NETSCAPE2.0 has a second sub-block.
        if (block === null) throw refuse('empty application extension');
        if (String.fromCharCode(...block.subarray(0, 11)) === 'NETSCAPE2.0') {
          block = data();
          if (block === null) throw refuse('empty NETSCAPE2.0 extension');
        }
      }
      while (nonEmpty(data()));
    } else if (s === 0x2c) {
      descriptor = read(9);
      if (descriptor.length < 9) throw refuse('truncated image descriptor');
      const flags = descriptor[8]!;
      if (flags & 0x80) {
        const p = read(3 << ((flags & 7) + 1));
        localPalette = paletteNeeded(p) ? p : null;
      }
      const bits = readByte();
      if (bits === -1) throw refuse('truncated before the image data');
      lzwMinCodeSize = bits;
      break;
    }
    s = -2;
  }
  if (!descriptor) throw refuse('no image before the end of the file');

  const frameLeft = u16(descriptor, 0);
  const frameTop = u16(descriptor, 2);
  const frameWidth = u16(descriptor, 4);
  const frameHeight = u16(descriptor, 6);
  const width = Math.max(screenWidth, frameLeft + frameWidth);
  const height = Math.max(screenHeight, frameTop + frameHeight);
  if (width <= 0 || height <= 0) throw refuse(`image is ${width}x${height}`);
  return {
    format: 'gif',
    width,
    height,
    orientation: 1,
    screenWidth,
    screenHeight,
    frameLeft,
    frameTop,
    frameWidth,
    frameHeight,
    interlaced: (descriptor[8]! & 0x40) !== 0,
    palette: localPalette === undefined ? globalPalette : localPalette,
    transparency,
    lzwMinCodeSize,
    dataOffset: pos,
  };
}

/** Bytes decodeGif allocates: the RGB output plus fixed-size tables. */
export function gifDecodeMemory(header: GifHeader): number {
  return header.width * header.height * 3 + FIXED_BYTES;
}

/** Where a GifDecode.c call stopped: wants more input (or hit an end code), finished, broken. */
const MORE = 0;
const DONE = 1;
const BROKEN = 2;
type Stop = typeof MORE | typeof DONE | typeof BROKEN;

/**
 * The first frame as RGB, `header.width` x `header.height` (GIF carries no orientation). 413 over
 * the pixel limit or the memory budget (checked before allocating), 422 for what Pillow refuses.
 */
export function decodeGif(bytes: Uint8Array, header: GifHeader, limits: DecodeLimits): RgbImage {
  const { width, height } = header;
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    throw tooLarge(`image is ${width}x${height} (${pixels} pixels), over the limit of ${limits.maxPixels}`);
  }
  const budgetMB = limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB;
  const need = gifDecodeMemory(header);
  if (need > budgetMB * 1024 * 1024) {
    throw tooLarge(
      `decoding this ${width}x${height} GIF needs ${Math.ceil(need / 1048576)} MB, over the budget of ${budgetMB} MB`,
    );
  }

  // libImaging's setimage: extents (0, y0, 0, y1) mean the whole image.
  let xoff = header.frameLeft;
  let yoff = header.frameTop;
  let xsize = header.frameWidth;
  let ysize = header.frameHeight;
  if (xoff === 0 && xsize === 0) {
    xoff = 0;
    yoff = 0;
    xsize = width;
    ysize = height;
  }
  if (xsize <= 0 || ysize <= 0) throw refuse(`empty first frame (${xsize}x${ysize})`);
  const bits = header.lzwMinCodeSize;
  if (bits > 12) throw refuse(`LZW minimum code size ${bits} is over 12`);

  // Colour lookup: the grey ramp, overwritten by the frame's table (as putpalette leaves it).
  const lut = new Uint8Array(768);
  for (let i = 0; i < 256; i++) lut[i * 3] = lut[i * 3 + 1] = lut[i * 3 + 2] = i;
  if (header.palette) lut.set(header.palette.subarray(0, Math.min(768, header.palette.length - (header.palette.length % 3))));

  const out = new Uint8Array(pixels * 3);
  const fill = header.transparency ?? 0;
  const fr = lut[fill * 3]!;
  const fg = lut[fill * 3 + 1]!;
  const fb = lut[fill * 3 + 2]!;
  if (fr === fg && fg === fb) out.fill(fr);
  else {
    for (let i = 0; i < out.length; i += 3) {
      out[i] = fr;
      out[i + 1] = fg;
      out[i + 2] = fb;
    }
  }

  // GifDecode.c's context and state, kept across calls as Pillow keeps them across reads.
  const clear = 1 << bits;
  const end = clear + 1;
  let interlace = header.interlaced ? 1 : 0;
  let step = header.interlaced ? 8 : 1;
  let x = 0;
  let y = 0;
  let state = 1;
  let next = 0;
  let codesize = 0;
  let codemask = 0;
  let bitbuffer = 0;
  let bitcount = 0;
  let blocksize = 0;
  let lastdata = 0;
  let lastcode = 0;
  const tdata = new Uint8Array(TABLE);
  const tlink = new Uint16Array(TABLE);
  const buffer = new Uint8Array(BUFFER);
  let bufferindex = BUFFER;
  let ptr = header.dataOffset;
  let limit = header.dataOffset; // end of what Pillow has read so far

  /** Writes one pixel; false when that completed the frame (GifDecode.c's NEWLINE returning -1). */
  const put = (v: number): boolean => {
    const o = ((y + yoff) * width + xoff + x) * 3;
    const l = v * 3;
    out[o] = lut[l]!;
    out[o + 1] = lut[l + 1]!;
    out[o + 2] = lut[l + 2]!;
    if (++x < xsize) return true;
    x = 0;
    y += step;
    while (y >= ysize) {
      if (interlace === 1) {
        y = 4;
        interlace = 2;
      } else if (interlace === 2) {
        step = 4;
        y = 2;
        interlace = 3;
      } else if (interlace === 3) {
        step = 2;
        y = 1;
        interlace = 0;
      } else return false;
    }
    return true;
  };

  /** One ImagingGifDecode call over bytes[ptr, limit). */
  const decode = (): Stop => {
    for (;;) {
      if (state === 1) {
        next = clear + 2;
        codesize = bits + 1;
        codemask = (1 << codesize) - 1;
        bufferindex = BUFFER;
        state = 2;
      }
      if (bufferindex < BUFFER) {
        // The rest of the last string, pushed right to left.
        const from = bufferindex;
        bufferindex = BUFFER;
        for (let k = from; k < BUFFER; k++) if (!put(buffer[k]!)) return DONE;
        continue;
      }
      while (bitcount < codesize) {
        if (blocksize > 0) {
          bitbuffer |= bytes[ptr++]! << bitcount;
          bitcount += 8;
          blocksize--;
        } else {
          // A new sub-block, only when all of it has been read.
          if (ptr >= limit) return MORE;
          const size = bytes[ptr]!;
          if (limit - ptr < size + 1) return MORE;
          blocksize = size;
          ptr++;
        }
      }
      let c = bitbuffer & codemask;
      bitbuffer >>>= codesize;
      bitcount -= codesize;

      if (c === clear) {
        if (state !== 2) state = 1;
        continue;
      }
      if (c === end) return MORE; // Pillow reads on, and goes on decoding what follows
      if (state === 2) {
        if (c > clear) return BROKEN;
        // lastdata is an unsigned char in GifDecode.c: a literal over 255 (minimum code size
        // 9..12) keeps its low byte.
        lastcode = c;
        lastdata = c & 0xff;
        state = 3;
      } else {
        const thiscode = c;
        if (c > next) return BROKEN;
        if (c === next) {
          if (bufferindex <= 0) return BROKEN;
          buffer[--bufferindex] = lastdata;
          c = lastcode;
        }
        while (c >= clear) {
          if (bufferindex <= 0 || c >= TABLE) return BROKEN;
          buffer[--bufferindex] = tdata[c]!;
          c = tlink[c]!;
        }
        lastdata = c & 0xff;
        if (next < TABLE) {
          tdata[next] = c;
          tlink[next] = lastcode;
          if (next === codemask && codesize < 12) {
            codesize++;
            codemask = (1 << codesize) - 1;
          }
          next++;
        }
        lastcode = thiscode;
      }
      if (!put(lastdata)) return DONE;
    }
  };

  // ImageFile.load: read 64 KiB, decode, until the decoder says done or broken, or a read is empty.
  for (;;) {
    if (limit >= bytes.length) throw refuse('image data truncated');
    limit = Math.min(bytes.length, limit + PILLOW_READ);
    const stop = decode();
    if (stop === DONE) break;
    if (stop === BROKEN) throw refuse('broken LZW data');
  }
  return { width, height, data: out };
}

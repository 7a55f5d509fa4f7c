/**
 * A minimal PNG writer: chunks with their CRC, and 8-bit RGB images as one IDAT of unfiltered
 * rows. For tools (`models view`) and tests that need a PNG of a given make-up; the Worker only
 * reads PNGs (src/image/png.ts).
 */
import { zlibSync } from 'fflate';

const SIGNATURE = Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]);

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One chunk: length, type, data, CRC over type and data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

export interface PngFileOptions {
  /** 2 (RGB) by default. */
  colorType?: number;
  /** 8 by default. */
  bitDepth?: number;
  interlaced?: boolean;
  /** Splits the image data into IDAT chunks of at most this many bytes (decoders must join them). */
  idatChunkBytes?: number;
}

/** IHDR + IDAT (already zlib-compressed scanlines, filter bytes included) + IEND. */
export function pngFile(width: number, height: number, idat: Uint8Array, options: PngFileOptions = {}): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([options.bitDepth ?? 8, options.colorType ?? 2, 0, 0, options.interlaced ? 1 : 0], 8);
  const step = options.idatChunkBytes || idat.length || 1;
  const idats: Uint8Array[] = [];
  for (let i = 0; i < Math.max(1, idat.length); i += step) idats.push(pngChunk('IDAT', idat.subarray(i, i + step)));
  const parts = [SIGNATURE, pngChunk('IHDR', ihdr), ...idats, pngChunk('IEND', new Uint8Array())];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
  return out;
}

/** An 8-bit RGB image (rows top to bottom) as a non-interlaced PNG, every row filter 0. */
export function encodeRgbPng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const raw = new Uint8Array(height * (1 + width * 3));
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), y * (1 + width * 3) + 1);
  return pngFile(width, height, zlibSync(raw));
}

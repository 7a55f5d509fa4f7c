/**
 * JPEG: our own walk of the marker segments (dimensions, EXIF orientation, colour model,
 * completeness), then jpeg-js for the pixels.
 *
 * The walk exists because jpeg-js only learns the size once it is decoding, and because it
 * learns of truncation late: past the end of the data its bit reader yields zeros, so a
 * cut-off file is decoded in full (padded) before a check at the end of the scan throws
 * "marker was not found". We refuse any file whose marker structure does not reach EOI
 * before jpeg-js sees it: cheaper, independent of jpeg-js's internals, and a clear message.
 */
import { decode as jpegJsDecode } from 'jpeg-js';
import { tooLarge, unprocessableImage } from '../errors';
import { hasExifPrefix, readExifOrientation } from './exif';
import { DEFAULT_MAX_MEMORY_MB, type DecodeLimits, type ImageInfo, type RgbImage } from './types';

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const APP0 = 0xe0;
const APP1 = 0xe1;
const APP14 = 0xee;

export interface JpegHeader extends ImageInfo {
  format: 'jpeg';
  /** Low byte of the SOFn marker: 0xc0 baseline, 0xc1 extended, 0xc2 progressive, ... */
  sof: number;
  /** Sample precision in bits; jpeg-js handles 8 only. */
  precision: number;
  components: number;
  /** Three components that hold R, G, B rather than Y, Cb, Cr (see storedAsRgb). */
  rgb: boolean;
  /** Transform flag of the Adobe APP14 segment, or null without one. */
  adobeTransform: number | null;
  /** Offset of the first SOS marker, or -1 when the data ends before it. */
  scanStart: number;
}

interface Marker {
  code: number;
  /** Offset just past the marker's code byte. */
  end: number;
}

const u16 = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;

/**
 * The marker at `pos`, past the 0xFF fill bytes that may precede it (T.81 B.1.1.2); null when
 * the data ends first.
 */
function markerAt(bytes: Uint8Array, pos: number): Marker | null {
  if (pos >= bytes.length) return null;
  if (bytes[pos] !== 0xff) throw unprocessableImage(`corrupt JPEG: no marker at byte ${pos}`);
  while (pos < bytes.length && bytes[pos] === 0xff) pos++;
  if (pos >= bytes.length) return null;
  return { code: bytes[pos]!, end: pos + 1 };
}

/** TEM and RSTn carry no length field. */
const isStandalone = (code: number): boolean => code === 0x01 || (code >= 0xd0 && code <= 0xd7);

/** SOF0..SOF15, less DHT (c4), JPG (c8) and DAC (cc), which share the range. */
const isSof = (code: number): boolean => code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc;

const startsWith = (seg: Uint8Array, ascii: string): boolean =>
  seg.length >= ascii.length && [...ascii].every((ch, i) => seg[i] === ch.charCodeAt(0));

/**
 * Reads the segments from SOI up to the first SOS: everything probe() needs, no pixel data.
 * Throws 422 when there is no usable frame header.
 */
export function readJpegHeader(bytes: Uint8Array): JpegHeader {
  let frame: { sof: number; precision: number; width: number; height: number; ids: number[] } | null = null;
  let orientation = 1;
  let exifSeen = false;
  let jfif = false;
  let adobeTransform: number | null = null;
  let scanStart = -1;
  let sawEoi = false;

  for (let pos = 2; ; ) {
    const m = markerAt(bytes, pos);
    if (m === null) break;
    if (m.code === SOS) {
      scanStart = m.end - 2;
      break;
    }
    if (m.code === EOI) {
      sawEoi = true;
      break;
    }
    if (m.code === SOI || m.code === 0x00) throw unprocessableImage(`corrupt JPEG: stray marker at byte ${m.end - 2}`);
    if (isStandalone(m.code)) {
      pos = m.end;
      continue;
    }
    if (m.end + 2 > bytes.length) break;
    const length = u16(bytes, m.end);
    if (length < 2) throw unprocessableImage(`corrupt JPEG: bad segment length at byte ${m.end}`);
    const segEnd = m.end + length;
    if (segEnd > bytes.length) break;
    const seg = bytes.subarray(m.end + 2, segEnd);

    if (isSof(m.code)) {
      if (frame) throw unprocessableImage('corrupt JPEG: more than one frame header');
      const count = seg[5] ?? 0;
      if (seg.length < 6 + 3 * count || count === 0) throw unprocessableImage('corrupt JPEG: bad frame header');
      const ids: number[] = [];
      for (let i = 0; i < count; i++) ids.push(seg[6 + 3 * i]!);
      frame = { sof: m.code, precision: seg[0]!, height: u16(seg, 1), width: u16(seg, 3), ids };
    } else if (m.code === APP1 && !exifSeen && hasExifPrefix(seg)) {
      // The first EXIF block is the image's own; later ones (rare) are ignored, as by libexif and PIL.
      exifSeen = true;
      orientation = readExifOrientation(seg);
    } else if (m.code === APP0 && startsWith(seg, 'JFIF\0')) {
      jfif = true;
    } else if (m.code === APP14 && seg.length >= 12 && startsWith(seg, 'Adobe')) {
      adobeTransform = seg[11]!;
    }
    pos = segEnd;
  }

  if (!frame) {
    throw unprocessableImage(sawEoi ? 'corrupt JPEG: no frame header' : 'JPEG is truncated before its frame header');
  }
  if (frame.width === 0) throw unprocessableImage('corrupt JPEG: width 0');
  // Height 0 means "given by a DNL marker after the first scan", which jpeg-js does not support.
  if (frame.height === 0) throw unprocessableImage('JPEG with its height in a DNL marker is not supported');
  return {
    format: 'jpeg',
    width: frame.width,
    height: frame.height,
    orientation,
    sof: frame.sof,
    precision: frame.precision,
    components: frame.ids.length,
    rgb: storedAsRgb(frame.ids, jfif, adobeTransform),
    adobeTransform,
    scanStart,
  };
}

/**
 * libjpeg's rule (jdapimin.c, default_decompress_parms) for three components: JFIF means
 * YCbCr; else an Adobe segment decides (transform 0 = RGB); else component ids 'R','G','B' mean
 * RGB. jpeg-js assumes YCbCr unless told, so an RGB JPEG would come out in false colours.
 */
function storedAsRgb(ids: number[], jfif: boolean, adobeTransform: number | null): boolean {
  if (ids.length !== 3 || jfif) return false;
  if (adobeTransform !== null) return adobeTransform === 0;
  return ids[0] === 0x52 && ids[1] === 0x47 && ids[2] === 0x42;
}

/**
 * Offset of the marker that ends the entropy-coded data starting at `pos`, or -1 when the
 * data runs out. Inside a scan 0xFF is always followed by 0x00 (a stuffed byte) or RSTn, so
 * the first other 0xFF pair is the next marker.
 */
function endOfEntropyData(bytes: Uint8Array, pos: number): number {
  for (let i = pos; ; ) {
    i = bytes.indexOf(0xff, i);
    if (i < 0 || i + 1 >= bytes.length) return -1;
    const next = bytes[i + 1]!;
    if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) i += 2;
    else if (next === 0xff) i += 1; // fill byte before a marker
    else return i;
  }
}

/**
 * Walks scans and the tables between them (progressive files have many) until EOI. False
 * when the data ends first: the file was cut off. Bytes after EOI are ignored, as by libjpeg.
 */
export function jpegReachesEoi(bytes: Uint8Array, scanStart: number): boolean {
  if (scanStart < 0) return false;
  for (let pos = scanStart; ; ) {
    const m = markerAt(bytes, pos);
    if (m === null) return false;
    if (m.code === EOI) return true;
    if (isStandalone(m.code)) {
      pos = m.end;
      continue;
    }
    if (m.end + 2 > bytes.length) return false;
    const length = u16(bytes, m.end);
    if (length < 2) throw unprocessableImage(`corrupt JPEG: bad segment length at byte ${m.end}`);
    pos = m.end + length;
    if (pos > bytes.length) return false;
    if (m.code === SOS) {
      pos = endOfEntropyData(bytes, pos);
      if (pos < 0) return false;
    }
  }
}

function unsupportedProcess(sof: number): string | null {
  if (sof === 0xc0 || sof === 0xc1 || sof === 0xc2) return null;
  if (sof === 0xc3) return 'lossless JPEG is not supported';
  if (sof >= 0xc9) return 'arithmetic-coded JPEG is not supported';
  return 'hierarchical JPEG is not supported';
}

/** jpeg-js's messages for its own limits; anything else it throws means bad data. */
const LIMIT_MESSAGE = /maxResolutionInMP|maxMemoryUsageInMB|allocate enough memory|allocation failed/;

/** Decodes to RGB. `header` is readJpegHeader(bytes); the pixel limit has been checked. */
export function decodeJpeg(bytes: Uint8Array, header: JpegHeader, limits: DecodeLimits): RgbImage {
  const unsupported = unsupportedProcess(header.sof);
  if (unsupported) throw unprocessableImage(unsupported);
  if (header.precision !== 8) throw unprocessableImage(`${header.precision}-bit JPEG is not supported`);
  if (header.components === 4 && header.adobeTransform === null) {
    // jpeg-js only knows Adobe's (inverted) CMYK; plain CMYK without the segment is very rare.
    throw unprocessableImage('CMYK JPEG without an Adobe segment is not supported');
  }
  if (header.components !== 1 && header.components !== 3 && header.components !== 4) {
    throw unprocessableImage(`JPEG with ${header.components} components is not supported`);
  }
  if (!jpegReachesEoi(bytes, header.scanStart)) throw unprocessableImage('JPEG is truncated (no end-of-image marker)');

  const maxMemoryMB = limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB;
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpegJsDecode(bytes, {
      useTArray: true,
      // Grayscale is replicated to R=G=B by jpeg-js itself in this mode; CMYK and YCCK with
      // an Adobe segment are inverted and converted with PIL's formula (checked by the tests).
      formatAsRGBA: false,
      // Tolerant mode only skips blocks past the image's last row, which valid files produce
      // when the restart interval does not divide the MCU count; truncation is caught above.
      tolerantDecoding: true,
      // Our pixel check already passed; jpeg-js's own is a backstop (+1 against rounding).
      maxResolutionInMP: (limits.maxPixels + 1) / 1e6,
      maxMemoryUsageInMB: maxMemoryMB,
      ...(header.rgb ? { colorTransform: false } : {}),
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (LIMIT_MESSAGE.test(message)) {
      throw tooLarge(`JPEG of ${header.width}x${header.height} needs more than ${maxMemoryMB} MB to decode`);
    }
    // jpeg-js's own messages name the defect; a TypeError from inside it would only name its code.
    const detail = err instanceof Error && err.constructor === Error ? `: ${message.slice(0, 100)}` : '';
    throw unprocessableImage(`corrupt JPEG${detail}`, err);
  }
  if (decoded.width !== header.width || decoded.height !== header.height || decoded.data.length !== header.width * header.height * 3) {
    throw unprocessableImage('corrupt JPEG: decoded size does not match its header');
  }
  return { width: decoded.width, height: decoded.height, data: decoded.data };
}

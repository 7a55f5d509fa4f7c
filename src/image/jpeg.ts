/**
 * JPEG: our own walk of the marker segments up to the first scan: dimensions, EXIF orientation,
 * colour model. Everything probe() and the decode plan need, no pixel data (the decoder is
 * ./jpeg/). Like libjpeg's marker reader (jdmarker.c next_marker), it skips stray bytes and
 * stuffed FF 00 pairs between segments, which real files have and Pillow accepts.
 */
import { unprocessableImage } from '../errors';
import { hasExifPrefix, readExifOrientation } from './exif';
import type { ImageInfo } from './types';

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
  /** Sample precision in bits; we decode 8 only. */
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
 * The next marker from `pos`, as libjpeg finds it: stray non-FF bytes are skipped, then the
 * 0xFF fill bytes (T.81 B.1.1.2), and an FF 00 pair is not a marker. Null when the data ends.
 */
function markerAt(bytes: Uint8Array, pos: number): Marker | null {
  for (;;) {
    while (pos < bytes.length && bytes[pos] !== 0xff) pos++;
    while (pos < bytes.length && bytes[pos] === 0xff) pos++;
    if (pos >= bytes.length) return null;
    if (bytes[pos] !== 0x00) return { code: bytes[pos]!, end: pos + 1 };
    pos++;
  }
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
    if (m.code === SOI) throw unprocessableImage(`corrupt JPEG: a second start-of-image marker at byte ${m.end - 2}`);
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
 * RGB.
 */
function storedAsRgb(ids: number[], jfif: boolean, adobeTransform: number | null): boolean {
  if (ids.length !== 3 || jfif) return false;
  if (adobeTransform !== null) return adobeTransform === 0;
  return ids[0] === 0x52 && ids[1] === 0x47 && ids[2] === 0x42;
}

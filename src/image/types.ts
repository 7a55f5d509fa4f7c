/** Shared shapes of the image decoding layer. */

export type ImageFormat = 'jpeg' | 'png';

/**
 * Decoded pixels: RGB interleaved, 3 bytes a pixel, rows top to bottom, already turned upright
 * by the EXIF orientation. `data` can be a view onto a larger ArrayBuffer (RGBA and 16-bit
 * PNGs are compacted in place to save a copy), so read `data`, never `data.buffer`.
 */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface DecodeLimits {
  /** Most pixels (width * height) an image may have; checked from the header, before decoding. */
  maxPixels: number;
  /**
   * Most memory, in MiB, the decoder's working set may take; over it, 413 before the big
   * allocations. Defaults to DEFAULT_MAX_MEMORY_MB. It is the decoders' own accounting: for
   * JPEG jpeg-js counts its typed arrays, ~13 bytes a pixel for 4:2:0 and ~20 for 4:4:4 (a
   * 12 MP photo: 157 / 245 MB), while the real heap growth is ~1.6 times that; for PNG our
   * estimate (~9 bytes a pixel for 8-bit RGB) is within ~20% of the real growth.
   */
  maxMemoryMB?: number;
  /**
   * Smallest shorter side the caller needs (the model's resizeShorter). When set, a baseline
   * JPEG is decoded in the DCT domain at the largest 1/2, 1/4 or 1/8 scale that keeps its
   * shorter side >= this (jpeg-scaled.ts), so the full-size image is never allocated. The
   * result is then smaller than the header's size. Absent: full size, as before.
   */
  minShorterSide?: number;
}

/** jpeg-js's own default. A Worker with 128 MB isolates should pass far less (see above). */
export const DEFAULT_MAX_MEMORY_MB = 512;

/** What the header says, without decoding. */
export interface ImageInfo {
  format: ImageFormat;
  /** As stored; for orientations 5..8 the decoded image is `height` wide and `width` tall. */
  width: number;
  height: number;
  /** EXIF orientation 1..8 (1 when absent or unreadable). */
  orientation: number;
}

/**
 * Where a streaming decoder puts its pixels: RGB rows (3 bytes a pixel, stored orientation),
 * top to bottom, each row exactly once, in calls of one or more whole rows. Lets a decoder
 * hand rows straight to the resize instead of holding the whole image (see collectRows for
 * the sink that does hold it).
 */
export interface RowSink {
  /** `rows` holds `count` rows of `width * 3` bytes, the first being row `y0`; valid only during the call. */
  write(rows: Uint8Array, y0: number, count: number): void;
}

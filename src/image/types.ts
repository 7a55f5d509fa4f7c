/** Shared shapes of the image decoding layer. */

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif';

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
   * Most memory, in MiB, one decode may allocate; over it, 413 before the big allocations.
   * Defaults to DEFAULT_MAX_MEMORY_MB. It is the decoders' own accounting of what they
   * allocate (their typed arrays: coefficient buffers, row bands, a collected image), which
   * is what grows the isolate's heap; see planDecode.
   */
  maxMemoryMB?: number;
}

/** For tools and tests. A Worker with 128 MB isolates passes far less (MAX_DECODE_MB). */
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
 * hand rows straight to the resize instead of holding the whole image. A decoder may have
 * written rows before it throws (a checksum at the end): the sink's owner drops them then.
 */
export interface RowSink {
  /** `rows` holds `count` rows of `width * 3` bytes, the first being row `y0`; valid only during the call. */
  write(rows: Uint8Array, y0: number, count: number): void;
}

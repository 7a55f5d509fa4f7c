/**
 * Scanlines out of the PNG's image data, and what their two readers share: zlib built to wasm
 * with the unfiltering beside it (./wasm-rows.ts; zlib is what the reference's Pillow inflates
 * with), and our own JS inflater and unfilter (./js-rows.ts), which serves where the .wasm
 * module is not loaded (Node tools without the loader) and is the tests' independent oracle.
 * Both read the run of IDAT chunks at a given offset (the last one may be cut by the end of
 * the file) and refuse bad data with the same 422s.
 */
import { unprocessableImage, type ApiError } from '../../errors';

export const u32 = (b: Uint8Array, i: number): number => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;

export const typeAt = (bytes: Uint8Array, pos: number): string =>
  String.fromCharCode(bytes[pos + 4]!, bytes[pos + 5]!, bytes[pos + 6]!, bytes[pos + 7]!);

/**
 * Inflated data beyond what the header implies that we still accept: libpng treats a little
 * trailing data as a benign error, but a small upload must not make us inflate gigabytes.
 */
export const INFLATE_SLACK = 64 * 1024;

/** Unfiltered scanlines out of the zlib stream in the IDAT run. Errors are our 422s. */
export interface RowReader {
  /** The start of an Adam7 pass of `n`-byte rows: the row above its first is zeros. */
  pass(n: number): void;
  /**
   * Scanline `y` (for messages) of `n` bytes, filter byte included, unfiltered: row[0] is the
   * filter type, row[1..n) the bytes. Valid until the next call. The image data must hold it.
   */
  row(n: number, y: number): Uint8Array;
  /**
   * After the last row: inflates what is left, up to INFLATE_SLACK bytes (refused beyond),
   * and checks the Adler-32 if the stream ends with one. Input that runs out first is fine:
   * Pillow stops reading at the last row.
   */
  finish(): void;
  /** Lets go of the image's bytes, whatever happened; called in `finally`. */
  close(): void;
}

export const truncated = (): ApiError => unprocessableImage('PNG is truncated (image data ends early)');
export const endedEarly = (): ApiError => unprocessableImage('corrupt PNG: image data ends early (its zlib stream ends before the last row)');
export const badFilter = (filter: number, y: number): ApiError => unprocessableImage(`corrupt PNG: unknown filter type ${filter} in scanline ${y}`);
export const badData = (what: string): ApiError => unprocessableImage(`corrupt PNG: bad compressed image data (${what})`);
export const badChecksum = (): ApiError => unprocessableImage('corrupt PNG: image data checksum (Adler-32) mismatch');
export const tooMuchData = (): ApiError => unprocessableImage('corrupt PNG: more image data than its size allows');

/** The data of each IDAT in the run at `pos`, in order (the last one cut by the file's end), then null. */
export function idatPieces(bytes: Uint8Array, pos: number): () => Uint8Array | null {
  return () => {
    if (pos + 8 > bytes.length || typeAt(bytes, pos) !== 'IDAT') return null;
    const start = pos + 8;
    const end = start + u32(bytes, pos);
    pos = end + 4;
    return bytes.subarray(start, Math.min(end, bytes.length));
  };
}

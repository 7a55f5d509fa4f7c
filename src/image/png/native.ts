/**
 * Non-interlaced PNG inflated by the runtime's native zlib (`DecompressionStream('deflate')`)
 * instead of our JS inflater, which is most of a big PNG's decode. An experiment, measured
 * by `bench/png-decode.ts --workerd`; the pipeline does not use it. Measured on the
 * benchmark's 12 MP PNG in wrangler's workerd (2026-12-02, shared 2-core machine, 9
 * interleaved runs, medians): JS 376 ms; native 435 / 253 / 190 / 160 ms with 1 / 2 / 4 /
 * 16 KB pieces, whose worst-case memory (nativeMemory) is 3 / 6 / 12 / 50 MB against the JS
 * decoder's 0.25 MB. 190 ms saved of the 720 ms end to end leaves T4 missed (~2.5x the
 * 640x480 JPEG; the 15.6 MB upload and inference alone take ~345 ms of the 422 allowed).
 *
 * Tried again and reverted (third session, same day): wired into the pipeline for PNGs of 8 MiB
 * and more inflated, where ResNet-50's longer inference would have let it pass T4 (the PNG row
 * measured 2.54x with the JS inflater). Two findings stopped it:
 * - the test pool's workerd (1.20260815) crashes ("The Workers runtime crashed unexpectedly")
 *   inflating a generated 2400x1800 noisy PNG this way (13 MB inflated; 2400x900 passes; with
 *   and without --liftoff-only), where wrangler's 1.20260426 decodes the same file. A newer
 *   runtime is what deployments get, so this path must not run until the cause is known;
 * - on poorly compressible data (that file: 9.7 MB for 13 MB) it is slower, 563 ms against the
 *   JS decoder's 414 (`bench/png-decode.ts --workerd FILE`): a round trip per 4 KB piece.
 *
 * Exactness: inflating is deterministic, so a stream that the native inflater finishes
 * without error gives the bytes ours would. Everything else, a native error of any kind
 * (bad data, bad checksum, a stream cut short or with trailing bytes), an unknown filter
 * type, too few rows or more than INFLATE_SLACK bytes past the last one, falls back to the
 * JS decoder (../png.ts) from the start, so its Pillow-exact handling of quirky and broken
 * files stays the only one. Rows the native pass already gave the sink are the JS decode's
 * first rows too (same bytes in, same unfilter), and are not written twice: the RowSink
 * contract (each row once, in order) holds across the fallback.
 *
 * Memory: workerd's DecompressionStream has no backpressure (its source says so: a write
 * inflates all of its input into an internal buffer, read or not; measured: a 0.4 MB PNG
 * bomb made workerd's RSS grow by 600 MB though we stopped reading at 0.4 MB). So we feed
 * it `piece` bytes at a time and only when its buffer is empty, and read with a buffer that
 * holds everything one piece can inflate to (deflate's ratio is at most 1032:1): each read
 * takes all there is, so we always know the buffer is empty. Protocol, per piece: issue the
 * read (it waits, the buffer being empty), write the piece (inflating fills the waiting read
 * with all its output), then take the read, or, when the piece gave no output (the read is
 * still waiting once the write is done), write the next piece into the same read. Bounded:
 * workerd holds at most one piece's output (its vector: up to twice that), we hold the read
 * buffer, both ~1032 x piece. nativeMemory() counts them; zlib's own state (32 KB window,
 * ~10 KB) is outside the JS heap and estimated.
 */
import type { DecodeLimits, RowSink } from '../types';
import {
  CHANNELS,
  INFLATE_SLACK,
  batchRows,
  checkMemory,
  decodePngTo,
  pngDecodeMemory,
  rowBytes,
  toRgb,
  typeAt,
  u32,
  unfilter,
  walkChunks,
  type Layout,
  type PngHeader,
} from '../png';

/** Compressed bytes fed per write. */
export const DEFAULT_PIECE = 4096;
/** Deflate's largest expansion (a 258-byte match in 2 bits), plus a match started in the previous piece. */
const maxOutput = (piece: number): number => piece * 1032 + 1024;
/** zlib's inflate state and window (inflateInit2 with 15 window bits), estimated. */
const ZLIB_STATE = 48 * 1024;

/** What the native path allocates beyond the JS decoder's figure: read buffer, workerd's buffer (vector growth: 2x), zlib. */
export const nativeMemory = (piece = DEFAULT_PIECE): number => 3 * maxOutput(piece) + ZLIB_STATE;

/** The native inflater as used here: workerd's semantics (writes inflate at once; a read takes min(buffer, all output)). */
export interface NativeInflater {
  write(piece: Uint8Array): Promise<void>;
  close(): Promise<void>;
  /** Waits while there is no output; resolves with all of it that fits in `into` (done at the end). */
  read(into: Uint8Array): Promise<{ value?: Uint8Array; done: boolean }>;
  cancel(): void;
}

/** workerd's DecompressionStream, read as a byte stream (BYOB); null where it is not one (Node's). */
export function runtimeInflater(): NativeInflater | null {
  if (typeof DecompressionStream !== 'function') return null;
  const ds = new DecompressionStream('deflate');
  let reader: ReadableStreamBYOBReader;
  try {
    reader = ds.readable.getReader({ mode: 'byob' });
  } catch {
    return null; // not a byte stream: its reads would not take everything there is
  }
  const writer = ds.writable.getWriter();
  return {
    write: (piece) => writer.write(piece),
    close: () => writer.close(),
    read: (into) => reader.read(into) as Promise<{ value?: Uint8Array; done: boolean }>,
    cancel() {
      reader.cancel().catch(() => {});
      writer.abort().catch(() => {});
    },
  };
}

/** A sink failure: not the inflater's, so it is thrown, not a reason to fall back. */
class SinkFailed extends Error {}

export interface NativeOptions {
  /** false: the JS path. */
  native?: boolean;
  /** Compressed bytes per write (DEFAULT_PIECE). */
  piece?: number;
  /** The inflater to use (tests); default runtimeInflater(). */
  inflater?: () => NativeInflater | null;
}

/**
 * Streams the image (stored orientation) into sink, inflating natively when the runtime can;
 * same pixels, errors and sink calls as decodePngTo. `native` in the result: whether the
 * native pass gave the image (false: JS did, from the start or after a fallback).
 */
export async function decodePngToAsync(
  bytes: Uint8Array,
  header: PngHeader,
  sink: RowSink,
  limits: DecodeLimits,
  options: NativeOptions = {},
): Promise<{ width: number; height: number; native: boolean }> {
  const size = { width: header.width, height: header.height };
  const piece = options.piece ?? DEFAULT_PIECE;
  const inflater = header.interlaced || options.native === false ? null : (options.inflater ?? runtimeInflater)();
  if (!inflater) {
    decodePngTo(bytes, header, sink, limits);
    return { ...size, native: false };
  }
  let delivered = 0;
  try {
    checkMemory(header, pngDecodeMemory(header) + nativeMemory(piece), limits);
    const layout = walkChunks(bytes, header); // its refusals are the JS path's: they come first there too
    const result = await nativeRows(bytes, header, layout, sink, inflater, piece);
    if (result.complete) return { ...size, native: true };
    delivered = result.delivered;
  } finally {
    inflater.cancel();
  }
  // From the start, with JS; the rows the sink has are skipped (batches line up: same batchRows).
  decodePngTo(
    bytes,
    header,
    {
      write(rows, y0, count) {
        if (y0 + count <= delivered) return;
        if (y0 < delivered) throw new Error(`png fallback: batch ${y0}+${count} straddles the ${delivered} rows already written`);
        sink.write(rows, y0, count);
      },
    },
    limits,
  );
  return { ...size, native: false };
}

/** The IDAT run's data, as decodeRows' inflater reads it (the last chunk may be cut by the end of the file), in pieces. */
function* pieces(bytes: Uint8Array, layout: Layout, piece: number): Generator<Uint8Array> {
  for (let pos = layout.idat; pos + 8 <= bytes.length && typeAt(bytes, pos) === 'IDAT'; ) {
    const length = u32(bytes, pos);
    const start = pos + 8;
    const end = Math.min(start + length, bytes.length);
    for (let p = start; p < end; p += piece) yield bytes.subarray(p, Math.min(end, p + piece));
    pos = start + length + 4;
  }
}

/**
 * The rows through the native inflater. `complete`: every row written and the stream ended
 * cleanly within INFLATE_SLACK; otherwise `delivered` rows were written and the caller falls back.
 */
async function nativeRows(
  bytes: Uint8Array,
  h: PngHeader,
  layout: Layout,
  sink: RowSink,
  inflater: NativeInflater,
  piece: number,
): Promise<{ complete: boolean; delivered: number }> {
  const { width, height } = h;
  const bpp = Math.max(1, (CHANNELS[h.colorType]! * h.bitDepth) >> 3);
  const full = rowBytes(h, width) + 1;
  let prev = new Uint8Array(full);
  let cur = new Uint8Array(full);
  const rowRgb = width * 3;
  const batch = batchRows(h);
  const out = new Uint8Array(batch * rowRgb);
  let fill = 0;
  let y = 0;
  let y0 = 0;
  let k = 0;
  let extra = 0;

  let buffer: Uint8Array = new Uint8Array(maxOutput(piece));
  const input = pieces(bytes, layout, piece);
  let closed = false;
  try {
    for (;;) {
      // The inflater's buffer is empty: read, then feed until the read has something.
      let settled: { value?: Uint8Array; done: boolean } | null = null;
      let failed: unknown = null;
      const reading = inflater.read(buffer).then(
        (r) => (settled = r),
        (err: unknown) => (failed = err ?? new Error('native inflate failed')),
      );
      while (settled === null && failed === null) {
        const next = closed ? null : input.next();
        if (next && !next.done) await inflater.write(next.value);
        else if (!closed) {
          closed = true;
          await inflater.close();
        } else {
          await reading; // closed: the read ends the stream
        }
        await Promise.resolve(); // let a read the write filled settle
      }
      if (failed !== null) return { complete: false, delivered: y0 };
      const { value, done } = settled!;
      if (done || !value) break;
      buffer = new Uint8Array(value.buffer); // the read transferred it
      const n = value.length;
      let i = 0;
      while (i < n && y < height) {
        const take = Math.min(full - fill, n - i);
        cur.set(value.subarray(i, i + take), fill);
        fill += take;
        i += take;
        if (fill < full) break;
        fill = 0;
        unfilter(cur, prev, full - 1, bpp, y);
        toRgb(h, layout.lut, cur, width, out, k * rowRgb, 1);
        [prev, cur] = [cur, prev];
        if (++k === batch || y === height - 1) {
          try {
            sink.write(out, y0, k);
          } catch (err) {
            throw new SinkFailed('sink', { cause: err });
          }
          y0 = y + 1;
          k = 0;
        }
        y++;
      }
      extra += n - i;
      if (extra > INFLATE_SLACK) return { complete: false, delivered: y0 }; // the JS path refuses it, its way
    }
    return { complete: y === height, delivered: y0 };
  } catch (err) {
    if (err instanceof SinkFailed) throw err.cause;
    return { complete: false, delivered: y0 }; // a native error (write, close), or an unknown filter type
  }
}

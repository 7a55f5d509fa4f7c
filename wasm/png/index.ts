/**
 * Binding of our PNG rows module (png_rows.wasm, see README.md beside this file): the only code
 * that touches its memory. zlib's inflate pulls each scanline into the module's memory and the
 * row is unfiltered there; the caller gets the row in place.
 *
 *   const rows = PngRows.fromModule(module);         // sync: Workers get a compiled Module
 *   rows.begin(rowBytes, nextPiece);                 // nextPiece: () => Uint8Array | null (no more)
 *   const row = rows.row(n, bpp);                    // row[0] the filter type, row[1..n) the bytes
 *   rows.finish(slack);                              // after the last row
 *
 * `row()`'s view is valid until the next call. What stops a decode throws PngRowsError, whose
 * `kind` says what happened (zlib's own message for bad data). The memory starts at 256 KiB
 * and grows only for the two rows of wide images; after a trap (which bad data must not cause,
 * but a bug could) the instance is discarded and the next begin() gets a fresh one.
 */

/** The next piece of compressed input (any length, zero included), or null: there is no more. */
export type Source = () => Uint8Array | null;

export type PngRowsErrorKind =
  /** The input ran out before the row was complete. */
  | 'truncated'
  /** The zlib stream ended before the row was complete. */
  | 'ended'
  /** The row's filter type (in `filter`) is not one of PNG's five. */
  | 'filter'
  /** Bad zlib data (header, codes, distances, checksum): zlib's message. */
  | 'data'
  /** More data after the last row than the slack allows. */
  | 'too-much'
  /** The rows do not fit the module's memory, or a bad call. */
  | 'internal';

export class PngRowsError extends Error {
  override readonly name = 'PngRowsError';
  constructor(
    readonly kind: PngRowsErrorKind,
    message: string,
    /** The bad filter type, for kind 'filter'. */
    readonly filter = -1,
  ) {
    super(message);
  }
}

// c/png_rows.c's results.
const PR_OK = 0;
const PR_NEED_INPUT = 1;
const PR_ENDED = 2;
const PR_BAD_FILTER = 3;
const PR_TOO_MUCH = 4;
const PR_NEED_DICT = 5;
const Z_DATA_ERROR = -3;
const Z_MEM_ERROR = -4;

/** An instance whose memory grew past this for wide rows is dropped after the image. */
const KEEP_BYTES = 1 << 20;

type Fn = (...args: number[]) => number;

interface Exports {
  memory: WebAssembly.Memory;
  pr_input: Fn;
  pr_input_cap: Fn;
  pr_begin: Fn;
  pr_feed: Fn;
  pr_pass: Fn;
  pr_row: Fn;
  pr_last: Fn;
  pr_current: Fn;
  pr_finish: Fn;
  pr_message: Fn;
}

const EMPTY = new Uint8Array(0);

export class PngRows {
  private e: Exports | null = null;
  private source: Source = () => null;
  /** What is left of the source's current piece after the part copied in. */
  private pending: Uint8Array = EMPTY;
  private sourceDone = true;
  private inBuf = 0;
  private inCap = 0;

  private constructor(private readonly module: WebAssembly.Module) {}

  /** Synchronous instantiation: Workers get the module precompiled and cannot compile bytes. */
  static fromModule(module: WebAssembly.Module): PngRows {
    const rows = new PngRows(module);
    rows.instance();
    return rows;
  }

  /** Bytes of the module's linear memory now (256 KiB, more while wide rows need it). */
  get memoryBytes(): number {
    return this.instance().memory.buffer.byteLength;
  }

  private instance(): Exports {
    if (this.e) return this.e;
    const x = new WebAssembly.Instance(this.module, {}).exports;
    const memory = x['memory'];
    if (!(memory instanceof WebAssembly.Memory)) throw new PngRowsError('internal', 'png rows: module has no memory export');
    const fn = (name: Exclude<keyof Exports, 'memory'>): Fn => {
      const f: unknown = x[name];
      if (typeof f !== 'function') throw new PngRowsError('internal', `png rows: module has no ${name}()`);
      return f as Fn;
    };
    this.e = {
      memory,
      pr_input: fn('pr_input'),
      pr_input_cap: fn('pr_input_cap'),
      pr_begin: fn('pr_begin'),
      pr_feed: fn('pr_feed'),
      pr_pass: fn('pr_pass'),
      pr_row: fn('pr_row'),
      pr_last: fn('pr_last'),
      pr_current: fn('pr_current'),
      pr_finish: fn('pr_finish'),
      pr_message: fn('pr_message'),
    };
    this.inBuf = this.e.pr_input() >>> 0;
    this.inCap = this.e.pr_input_cap() >>> 0;
    return this.e;
  }

  /** Starts an image whose scanlines are at most `rowBytes` long (filter byte included). */
  begin(rowBytes: number, source: Source): void {
    if (this.e && this.e.memory.buffer.byteLength > KEEP_BYTES) this.e = null; // give a big one back
    const status = this.guard((e) => e.pr_begin(rowBytes));
    if (status === Z_MEM_ERROR) throw new PngRowsError('internal', `png rows: no memory for two rows of ${rowBytes} bytes`);
    if (status !== PR_OK) throw new PngRowsError('internal', `png rows: inflateInit failed (status ${status})`);
    this.source = source;
    this.pending = EMPTY;
    this.sourceDone = false;
  }

  /** The start of an Adam7 pass of `n`-byte rows: the row above its first is zeros. */
  pass(n: number): void {
    this.guard((e) => e.pr_pass(n));
  }

  /** The next scanline of `n` bytes (filter byte included), unfiltered with `bpp` bytes a pixel. */
  row(n: number, bpp: number): Uint8Array {
    return this.guard((e) => {
      for (;;) {
        const status = e.pr_row(n, bpp);
        if (status === PR_OK) return new Uint8Array(e.memory.buffer, e.pr_last() >>> 0, n);
        if (status === PR_NEED_INPUT) {
          if (!this.feed(e)) throw new PngRowsError('truncated', 'png rows: the input ends before the row');
          continue;
        }
        if (status === PR_BAD_FILTER) {
          const filter = new Uint8Array(e.memory.buffer)[e.pr_current() >>> 0]!;
          throw new PngRowsError('filter', `png rows: unknown filter type ${filter}`, filter);
        }
        if (status === PR_ENDED) throw new PngRowsError('ended', 'png rows: the zlib stream ends before the row');
        throw this.failure(e, status);
      }
    });
  }

  /**
   * After the last row: inflates the rest, at most `slack` bytes of it, checking the Adler-32
   * if the stream ends with one. Input that runs out first is fine (the rows are all there).
   */
  finish(slack: number): void {
    this.guard((e) => {
      for (;;) {
        const status = e.pr_finish(slack);
        if (status === PR_OK) return;
        if (status === PR_NEED_INPUT) {
          if (!this.feed(e)) return;
          continue;
        }
        if (status === PR_TOO_MUCH) throw new PngRowsError('too-much', `png rows: more than ${slack} bytes after the last row`);
        throw this.failure(e, status);
      }
    });
  }

  /**
   * Lets go of the image: its source and the rest of its current piece. Both are views of the
   * caller's upload, and this instance outlives the decode (one per isolate), so holding them
   * kept the last PNG's whole upload alive (a heap snapshot mid-burst showed 14.9 MiB retained
   * by `pending`, bench/heap-burst.ts --snapshot). Callers end every image, in `finally`.
   */
  end(): void {
    this.source = () => null;
    this.pending = EMPTY;
    this.sourceDone = true;
  }

  /** Whether any input of an image is still held (false after end()). */
  get holdsInput(): boolean {
    return this.pending.length > 0 || !this.sourceDone;
  }

  /** Copies the next input into the module; false when the source has no more. */
  private feed(e: Exports): boolean {
    while (!this.sourceDone) {
      if (this.pending.length === 0) {
        const next = this.source();
        if (next === null) {
          this.sourceDone = true;
          break;
        }
        this.pending = next;
        continue; // a zero-length piece: ask again
      }
      const n = Math.min(this.pending.length, this.inCap);
      new Uint8Array(e.memory.buffer, this.inBuf, n).set(this.pending.subarray(0, n));
      this.pending = this.pending.subarray(n);
      e.pr_feed(n);
      return true;
    }
    return false;
  }

  private failure(e: Exports, status: number): PngRowsError {
    if (status === PR_NEED_DICT) return new PngRowsError('data', 'preset dictionary');
    if (status !== Z_DATA_ERROR) return new PngRowsError('internal', `png rows: status ${status}`);
    const at = e.pr_message() >>> 0;
    let message = 'bad data';
    if (at !== 0) {
      const mem = new Uint8Array(e.memory.buffer);
      let end = at;
      while (end < mem.length && end - at < 200 && mem[end] !== 0) end++;
      message = String.fromCharCode(...mem.subarray(at, end));
    }
    return new PngRowsError('data', message);
  }

  /** Runs `body` on the instance; a trap discards it, so that the next image gets a fresh one. */
  private guard<T>(body: (e: Exports) => T): T {
    const e = this.instance();
    try {
      return body(e);
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError) {
        this.e = null;
        throw new PngRowsError('internal', `png rows: trapped (${err.message})`);
      }
      throw err;
    }
  }
}

/**
 * Binding of our libwebp build (build/webp_dec.wasm, see README.md beside this file): the only
 * code that touches its memory. Decodes a still WebP (an animation's first frame must first be
 * extracted into a still file) at full size or scaled down by libwebp's rescaler, handing rows
 * to a callback as libwebp produces them: the decoder holds the input, a ring of 40 output rows
 * and its own working state, never the image.
 *
 *   const webp = WebpDecoder.fromModule(module);       // sync: Workers get a compiled Module
 *   webp.decode(bytes, { scaleTo: { width: 1008, height: 756 } }, (rows, y0, count) => { ... });
 *
 * `rows` is a view into the wasm memory, valid during the callback only: `count` rows from row
 * `y0`, each `width * channels` bytes, tightly packed. Errors are WebpError with a short message
 * and libwebp's status (`code`); an error thrown by the callback stops the decode and is
 * rethrown as it is. After a trap (which a hostile file must not cause, but a bug could) the
 * instance is discarded and the next call gets a fresh one.
 */

export interface WebpInfo {
  width: number;
  height: number;
  alpha: boolean;
  lossless: boolean;
  animated: boolean;
}

export interface WebpDecodeOptions {
  /** Decode to this size with libwebp's rescaler; downscaling only (each side 1..the crop's). */
  scaleTo?: { width: number; height: number };
  /** Decode only the top-left width x height of the image (before scaling). */
  crop?: { width: number; height: number };
  /** Extra columns / rows (0..16) after the last, copies of it. */
  pad?: { right: number; bottom: number };
  /** RGBA (non-premultiplied) instead of RGB; only then is the ALPH chunk decoded. */
  rgba?: boolean;
  /**
   * The wasm memory does not grow past this many bytes during the decode (input included):
   * libwebp gets "out of memory" (code 1) instead. It never shrinks, so this bounds what one
   * hostile or mis-budgeted file can leave behind. Default: no limit but wasm32's 2 GiB.
   */
  maxMemoryBytes?: number;
}

/**
 * The options for a 1/scale reduced decode whose pixel j stands for the full image's pixels
 * [j * scale, (j + 1) * scale), as src/preprocess/reference.ts's Reduction wants: libwebp's
 * rescaler maps its whole input onto the output, so the input is cropped to a multiple of
 * `scale` first (each output pixel then averages exactly scale x scale pixels), and the last
 * column / row that the full size leaves over (ceil vs floor) is a copy of its neighbour. The
 * delivered size is ceil(width / scale) x ceil(height / scale).
 */
export function reducedDecodeOptions(width: number, height: number, scale: number): WebpDecodeOptions {
  if (!Number.isInteger(scale) || scale < 1) throw new WebpError(`webp: scale must be a positive integer, got ${scale}`, 0);
  if (scale === 1) return {};
  const w = Math.floor(width / scale);
  const h = Math.floor(height / scale);
  if (w < 1 || h < 1) throw new WebpError(`webp: ${width}x${height} is too small for 1/${scale}`, 0);
  return {
    crop: { width: w * scale, height: h * scale },
    scaleTo: { width: w, height: h },
    pad: { right: Math.ceil(width / scale) - w, bottom: Math.ceil(height / scale) - h },
  };
}

/** What decode() delivered: rows of `width` pixels of `channels` bytes, `height` of them. */
export interface WebpDecoded {
  width: number;
  height: number;
  channels: 3 | 4;
}

export type OnRows = (rows: Uint8Array, y0: number, count: number) => void;

/** libwebp's VP8StatusCode, then ours (c/webp_rows.c). */
const STATUS: Record<number, string> = {
  1: 'out of memory',
  2: 'invalid parameters',
  3: 'corrupt bitstream',
  4: 'unsupported feature',
  5: 'suspended',
  6: 'aborted',
  7: 'truncated',
  20: 'aborted by the row callback',
  21: 'bad sizes',
  22: 'row delivery failed',
};

export class WebpError extends Error {
  override readonly name = 'WebpError';
  constructor(
    message: string,
    /** libwebp's status code (1..7), ours (20..22), or 0 for a trap or a bad call. */
    readonly code: number,
  ) {
    super(message);
  }
}

type Fn = (...args: number[]) => number;

function infoAt(e: Exports, ptr: number, length: number): WebpInfo {
  const out = e.webp_malloc(20) >>> 0;
  if (out === 0) throw new WebpError('webp: out of memory', 1);
  try {
    const status = e.webp_info(ptr, length, out);
    if (status !== 0) throw new WebpError(`webp: ${STATUS[status] ?? `status ${status}`}`, status);
    const v = new Int32Array(e.memory.buffer, out, 5);
    return { width: v[0]!, height: v[1]!, alpha: v[2] !== 0, lossless: v[3] !== 0, animated: v[4] !== 0 };
  } finally {
    e.webp_free(out);
  }
}

interface Exports {
  memory: WebAssembly.Memory;
  webp_malloc: Fn;
  webp_free: Fn;
  webp_info: Fn;
  webp_decode_rows: Fn;
  webp_heap_in_use: Fn;
  webp_heap_peak: Fn;
  webp_heap_reset_peak: Fn;
  webp_heap_limit: Fn;
}

const MAX_PAD = 16;

function checkSize(what: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 1 || v > max) throw new WebpError(`webp: ${what} must be an integer in 1..${max}, got ${v}`, 0);
}

export class WebpDecoder {
  private e: Exports | null = null;
  /** The current decode's callback; the import calls it. */
  private onRows: OnRows | null = null;
  private rowBytes = 0;
  private callbackError: { error: unknown } | null = null;

  private constructor(private readonly module: WebAssembly.Module) {}

  /** Synchronous instantiation: Workers get the module precompiled and cannot compile bytes. */
  static fromModule(module: WebAssembly.Module): WebpDecoder {
    const d = new WebpDecoder(module);
    d.instance();
    return d;
  }

  private instance(): Exports {
    if (this.e) return this.e;
    const instance = new WebAssembly.Instance(this.module, {
      env: { webp_rows: (ptr: number, y0: number, count: number, stride: number) => this.rows(ptr, y0, count, stride) },
    });
    const x = instance.exports;
    const memory = x['memory'];
    if (!(memory instanceof WebAssembly.Memory)) throw new WebpError('webp: module has no memory export', 0);
    const fn = (name: keyof Exports): Fn => {
      const f: unknown = x[name];
      if (typeof f !== 'function') throw new WebpError(`webp: module has no ${name}()`, 0);
      return f as Fn;
    };
    this.e = {
      memory,
      webp_malloc: fn('webp_malloc'),
      webp_free: fn('webp_free'),
      webp_info: fn('webp_info'),
      webp_decode_rows: fn('webp_decode_rows'),
      webp_heap_in_use: fn('webp_heap_in_use'),
      webp_heap_peak: fn('webp_heap_peak'),
      webp_heap_reset_peak: fn('webp_heap_reset_peak'),
      webp_heap_limit: fn('webp_heap_limit'),
    };
    return this.e;
  }

  /** env.webp_rows: hands the batch to the callback; 0 stops the decode. Never throws into wasm. */
  private rows(ptr: number, y0: number, count: number, stride: number): number {
    const cb = this.onRows;
    if (!cb || !this.e || stride !== this.rowBytes) return 0;
    try {
      cb(new Uint8Array(this.e.memory.buffer, ptr, count * stride), y0, count);
      return 1;
    } catch (error) {
      this.callbackError = { error };
      return 0;
    }
  }

  /** Size of the instance's linear memory now (it grows to the largest decode and never shrinks). */
  get memoryBytes(): number {
    return this.e ? this.e.memory.buffer.byteLength : 0;
  }

  /** Heap bytes in use now and at most since the last resetPeak() (malloc's own accounting). */
  heap(): { inUse: number; peak: number } {
    const e = this.instance();
    return { inUse: e.webp_heap_in_use() >>> 0, peak: e.webp_heap_peak() >>> 0 };
  }

  resetPeak(): void {
    this.instance().webp_heap_reset_peak();
  }

  /** Runs `body` with `bytes` copied into the wasm heap; frees it after, or drops a trapped instance. */
  private withInput<T>(bytes: Uint8Array, body: (e: Exports, ptr: number) => T, maxMemoryBytes = 0): T {
    if (bytes.length === 0) throw new WebpError('webp: empty input', 0);
    const e = this.instance();
    let ptr = 0;
    let trapped = false;
    try {
      e.webp_heap_limit(maxMemoryBytes);
      ptr = e.webp_malloc(bytes.length) >>> 0;
      if (ptr === 0) throw new WebpError('webp: out of memory for the input', 1);
      new Uint8Array(e.memory.buffer, ptr, bytes.length).set(bytes);
      return body(e, ptr);
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError) {
        trapped = true;
        this.e = null; // a trapped instance may be inconsistent: the next call gets a fresh one
        throw new WebpError(`webp: decoder trapped (${err.message})`, 0);
      }
      throw err;
    } finally {
      if (!trapped) {
        if (ptr !== 0) e.webp_free(ptr);
        e.webp_heap_limit(0);
      }
    }
  }

  /** Size and kind from the headers (libwebp's WebPGetFeatures). */
  info(bytes: Uint8Array): WebpInfo {
    return this.withInput(bytes, (e, ptr) => infoAt(e, ptr, bytes.length));
  }

  /**
   * Decodes `bytes` (a still WebP), calling `onRows` with batches of rows top to bottom, every
   * row exactly once. Returns the delivered size. Synchronous; one decode at a time.
   */
  decode(bytes: Uint8Array, options: WebpDecodeOptions, onRows: OnRows): WebpDecoded {
    if (this.onRows) throw new WebpError('webp: a decode is already running', 0);
    const { scaleTo, crop, pad, rgba = false, maxMemoryBytes = 0 } = options;
    if (!Number.isInteger(maxMemoryBytes) || maxMemoryBytes < 0) throw new WebpError(`webp: bad maxMemoryBytes ${maxMemoryBytes}`, 0);
    const LIMIT = 16383; // VP8/VP8L's largest side
    if (crop) {
      checkSize('crop width', crop.width, LIMIT);
      checkSize('crop height', crop.height, LIMIT);
    }
    if (scaleTo) {
      checkSize('scaled width', scaleTo.width, LIMIT);
      checkSize('scaled height', scaleTo.height, LIMIT);
    }
    const padRight = pad?.right ?? 0;
    const padBottom = pad?.bottom ?? 0;
    for (const v of [padRight, padBottom]) {
      if (!Number.isInteger(v) || v < 0 || v > MAX_PAD) throw new WebpError(`webp: padding must be an integer in 0..${MAX_PAD}, got ${v}`, 0);
    }
    const channels = rgba ? 4 : 3;

    return this.withInput(bytes, (e, ptr) => {
      // The delivered size, from the header (libwebp checks the same against the bitstream).
      const info = infoAt(e, ptr, bytes.length);
      const cw = crop?.width ?? info.width;
      const ch = crop?.height ?? info.height;
      if (cw > info.width || ch > info.height) throw new WebpError(`webp: crop ${cw}x${ch} is outside the ${info.width}x${info.height} image`, 21);
      const ow = scaleTo?.width ?? cw;
      const oh = scaleTo?.height ?? ch;
      if (ow > cw || oh > ch) throw new WebpError(`webp: ${ow}x${oh} is not a downscale of ${cw}x${ch}`, 21);
      this.onRows = onRows;
      this.rowBytes = (ow + padRight) * channels;
      this.callbackError = null;
      try {
        const status = e.webp_decode_rows(ptr, bytes.length, crop?.width ?? 0, crop?.height ?? 0, scaleTo?.width ?? 0, scaleTo?.height ?? 0, padRight, padBottom, rgba ? 1 : 0);
        // (The import set it during the call: TypeScript's narrowing cannot know.)
        const failure = this.callbackError as { error: unknown } | null;
        if (failure) throw failure.error;
        if (status !== 0) throw new WebpError(`webp: ${STATUS[status] ?? `status ${status}`}`, status);
        return { width: ow + padRight, height: oh + padBottom, channels };
      } finally {
        this.onRows = null;
        this.callbackError = null;
      }
    }, maxMemoryBytes);
  }
}

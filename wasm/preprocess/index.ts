/**
 * Binding of the preprocessing kernel: the only code that touches its wasm memory. The memory
 * layout and call sequence are documented in README.md beside this file.
 *
 * Types are structural so this folder stands alone: src/models/manifest.ts's PreprocessSpec
 * and src/preprocess/types.ts's RgbImage both fit.
 */

export interface KernelImage {
  readonly width: number;
  readonly height: number;
  /** RGB interleaved, 3 bytes per pixel, rows top to bottom. */
  readonly data: Uint8Array;
}

/** The image is a 1/scale decode of fullWidth x fullHeight (see src/preprocess/reference.ts's Reduction). */
export interface KernelReduction {
  readonly fullWidth: number;
  readonly fullHeight: number;
  readonly scale: number;
}

export interface KernelSpec {
  readonly resizeShorter: number;
  readonly cropHeight: number;
  readonly cropWidth: number;
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

// Parameter block slots (i32 unless noted); the kernel's assembly/index.ts defines the same.
const P_ROW_FIRST = 11;
const P_ROW_COUNT = 12;
const P_CHUNK_ROWS = 13;
const P_INPUT_PTR = 14;
const P_OUTPUT_PTR = 15;
const P_END = 16;
const P_MEAN = 20; // f32 x 3
const P_STD = 24; // f32 x 3
const PARAM_SLOTS = 32;

const PAGE = 65536;

type IntFn = (...args: number[]) => number;

interface KernelExports {
  memory: WebAssembly.Memory;
  params: IntFn;
  plan: IntFn;
  prepare: IntFn;
  horizontal: IntFn;
  vertical: IntFn;
}

function exportedFunction(exports: WebAssembly.Exports, name: string): IntFn {
  const f: unknown = exports[name];
  if (typeof f !== 'function') throw new Error(`preprocess kernel: missing export ${name}()`);
  return f as IntFn;
}

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 0x7fff_ffff) {
    throw new RangeError(`preprocess: ${name} must be a positive integer, got ${v}`);
  }
}

export class PreprocessKernel {
  private readonly paramsPtr: number;
  private generation = 0;

  private constructor(private readonly k: KernelExports) {
    this.paramsPtr = k.params();
  }

  /** Synchronous instantiation: Workers get the module precompiled and cannot compile bytes. */
  static fromModule(module: WebAssembly.Module): PreprocessKernel {
    const instance = new WebAssembly.Instance(module, {
      env: {
        // Only reachable from a debug build (release is built with abort= and no asserts).
        abort: (_msg: number, _file: number, line: number, column: number): never => {
          throw new Error(`preprocess kernel aborted at ${line}:${column}`);
        },
      },
    });
    const e = instance.exports;
    const memory = e['memory'];
    if (!(memory instanceof WebAssembly.Memory)) throw new Error('preprocess kernel: missing memory export');
    return new PreprocessKernel({
      memory,
      params: exportedFunction(e, 'params'),
      plan: exportedFunction(e, 'plan'),
      prepare: exportedFunction(e, 'prepare'),
      horizontal: exportedFunction(e, 'horizontal'),
      vertical: exportedFunction(e, 'vertical'),
    });
  }

  /** Current size of the kernel's linear memory (it only grows for a larger image than before). */
  get memoryBytes(): number {
    return this.k.memory.buffer.byteLength;
  }

  /**
   * Resize (shorter side, Pillow-exact bilinear), center crop, normalize: writes
   * 3 * cropHeight * cropWidth float32 values, CHW, into `out` at `offset`. With `reduction`,
   * `img` is a 1/scale decode of a larger image and is resized with that image's geometry.
   */
  run(img: KernelImage, spec: KernelSpec, out: Float32Array, offset: number, reduction?: KernelReduction): void {
    const rowBytes = img.width * 3;
    if (img.data.length !== rowBytes * img.height) {
      throw new RangeError(
        `preprocess: expected ${rowBytes * img.height} RGB bytes for ${img.width}x${img.height}, got ${img.data.length}`,
      );
    }
    const job = this.begin(img.width, img.height, spec, reduction);
    job.write(img.data, 0, img.height);
    job.finish(out, offset);
  }

  /**
   * Starts one image whose rows will arrive in order (a streaming decoder's output): only the
   * rows the crop needs are kept, a chunk at a time, so the image never has to exist whole.
   * One job at a time per kernel: beginning another abandons this one.
   */
  begin(width: number, height: number, spec: KernelSpec, reduction?: KernelReduction): KernelJob {
    checkPositiveInt('image width', width);
    checkPositiveInt('image height', height);
    checkPositiveInt('resizeShorter', spec.resizeShorter);
    checkPositiveInt('cropWidth', spec.cropWidth);
    checkPositiveInt('cropHeight', spec.cropHeight);
    const full = reduction ?? { fullWidth: width, fullHeight: height, scale: 1 };
    checkPositiveInt('full width', full.fullWidth);
    checkPositiveInt('full height', full.fullHeight);
    checkPositiveInt('scale', full.scale);
    if (Math.ceil(full.fullWidth / full.scale) !== width || Math.ceil(full.fullHeight / full.scale) !== height) {
      throw new RangeError(`preprocess: ${width}x${height} is not ${full.fullWidth}x${full.fullHeight} at 1/${full.scale}`);
    }
    const mean = spec.mean;
    const std = spec.std;
    for (let c = 0; c < 3; c++) {
      const m = mean[c];
      const s = std[c];
      if (m === undefined || s === undefined || !Number.isFinite(m) || !Number.isFinite(s) || s === 0) {
        throw new RangeError('preprocess: mean and std need 3 finite values, std non-zero');
      }
    }

    const k = this.k;
    const status = k.plan(width, height, spec.resizeShorter, spec.cropWidth, spec.cropHeight, full.fullWidth, full.fullHeight, full.scale);
    if (status !== 0) {
      throw new RangeError(`preprocess: ${width}x${height} with this spec is too large for the kernel`);
    }
    let p = new Int32Array(k.memory.buffer, this.paramsPtr, PARAM_SLOTS);
    const end = p[P_END] as number;
    const have = k.memory.buffer.byteLength;
    if (end > have) {
      k.memory.grow(Math.ceil((end - have) / PAGE));
      // Growing detaches the old buffer: views must be made again.
      p = new Int32Array(k.memory.buffer, this.paramsPtr, PARAM_SLOTS);
    }
    const f = new Float32Array(k.memory.buffer, this.paramsPtr, PARAM_SLOTS);
    for (let c = 0; c < 3; c++) {
      f[P_MEAN + c] = mean[c] as number;
      f[P_STD + c] = std[c] as number;
    }
    k.prepare();
    const rowFirst = p[P_ROW_FIRST] as number;
    return new KernelJob(this.k, ++this.generation, () => this.generation, {
      width,
      rowFirst,
      rowEnd: rowFirst + (p[P_ROW_COUNT] as number),
      chunkRows: p[P_CHUNK_ROWS] as number,
      inputPtr: p[P_INPUT_PTR] as number,
      outputPtr: p[P_OUTPUT_PTR] as number,
      outputLength: 3 * spec.cropHeight * spec.cropWidth,
    });
  }
}

interface JobLayout {
  width: number;
  rowFirst: number;
  rowEnd: number;
  chunkRows: number;
  inputPtr: number;
  outputPtr: number;
  outputLength: number;
}

/**
 * One image in flight (see PreprocessKernel.begin). `write` takes rows in order, as a
 * streaming decoder produces them (it fits src/image's RowSink); rows outside the crop's
 * source band are skipped without a copy. `finish` runs the vertical pass once every needed
 * row has arrived.
 */
export class KernelJob {
  /** Next source row expected. */
  private next = 0;
  /** Rows of the current chunk already copied in, starting at row `chunkStart`. */
  private chunkStart: number;
  private chunkFill = 0;
  private done = false;

  constructor(
    private readonly k: KernelExports,
    private readonly generation: number,
    private readonly current: () => number,
    private readonly layout: JobLayout,
  ) {
    this.chunkStart = layout.rowFirst;
  }

  write(rows: Uint8Array, y0: number, count: number): void {
    this.check();
    const L = this.layout;
    const rowBytes = L.width * 3;
    if (y0 !== this.next || !Number.isInteger(count) || count < 0 || rows.length < count * rowBytes) {
      throw new RangeError(`preprocess: rows ${y0}..${y0 + count} arrive out of order or short (expected row ${this.next})`);
    }
    this.next += count;
    // The part of these rows the crop reads.
    const from = Math.max(y0, L.rowFirst);
    const to = Math.min(y0 + count, L.rowEnd);
    for (let y = from; y < to; ) {
      const n = Math.min(to - y, L.chunkRows - this.chunkFill);
      // Memory may have grown (another image) since begin(); take the buffer afresh.
      const heap = new Uint8Array(this.k.memory.buffer);
      heap.set(rows.subarray((y - y0) * rowBytes, (y - y0 + n) * rowBytes), L.inputPtr + this.chunkFill * rowBytes);
      this.chunkFill += n;
      y += n;
      if (this.chunkFill === L.chunkRows || this.chunkStart + this.chunkFill === L.rowEnd) this.flush();
    }
  }

  finish(out: Float32Array, offset: number): void {
    this.check();
    const L = this.layout;
    if (!Number.isInteger(offset) || offset < 0 || offset + L.outputLength > out.length) {
      throw new RangeError(`preprocess: output needs ${L.outputLength} floats at offset ${offset}, tensor has ${out.length}`);
    }
    if (this.next < L.rowEnd) throw new RangeError(`preprocess: image ended at row ${this.next}, the crop needs rows up to ${L.rowEnd}`);
    this.done = true;
    this.k.vertical();
    out.set(new Float32Array(this.k.memory.buffer, L.outputPtr, L.outputLength), offset);
  }

  private flush(): void {
    if (this.chunkFill > 0) this.k.horizontal(this.chunkStart, this.chunkFill);
    this.chunkStart += this.chunkFill;
    this.chunkFill = 0;
  }

  private check(): void {
    if (this.done) throw new Error('preprocess: job already finished');
    if (this.current() !== this.generation) throw new Error('preprocess: another image was started on this kernel');
  }
}

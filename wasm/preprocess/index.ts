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
   * 3 * cropHeight * cropWidth float32 values, CHW, into `out` at `offset`.
   */
  run(img: KernelImage, spec: KernelSpec, out: Float32Array, offset: number): void {
    checkPositiveInt('image width', img.width);
    checkPositiveInt('image height', img.height);
    checkPositiveInt('resizeShorter', spec.resizeShorter);
    checkPositiveInt('cropWidth', spec.cropWidth);
    checkPositiveInt('cropHeight', spec.cropHeight);
    const rowBytes = img.width * 3;
    if (img.data.length !== rowBytes * img.height) {
      throw new RangeError(
        `preprocess: expected ${rowBytes * img.height} RGB bytes for ${img.width}x${img.height}, got ${img.data.length}`,
      );
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
    const n = 3 * spec.cropHeight * spec.cropWidth;
    if (!Number.isInteger(offset) || offset < 0 || offset + n > out.length) {
      throw new RangeError(`preprocess: output needs ${n} floats at offset ${offset}, tensor has ${out.length}`);
    }

    const k = this.k;
    const status = k.plan(img.width, img.height, spec.resizeShorter, spec.cropWidth, spec.cropHeight);
    if (status !== 0) {
      throw new RangeError(`preprocess: ${img.width}x${img.height} with this spec is too large for the kernel`);
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
    const rowEnd = rowFirst + (p[P_ROW_COUNT] as number);
    const chunkRows = p[P_CHUNK_ROWS] as number;
    const inputPtr = p[P_INPUT_PTR] as number;
    const outputPtr = p[P_OUTPUT_PTR] as number;
    const heap = new Uint8Array(k.memory.buffer);
    for (let r = rowFirst; r < rowEnd; r += chunkRows) {
      const rows = Math.min(chunkRows, rowEnd - r);
      heap.set(img.data.subarray(r * rowBytes, (r + rows) * rowBytes), inputPtr);
      k.horizontal(r, rows);
    }
    k.vertical();
    out.set(new Float32Array(k.memory.buffer, outputPtr, n), offset);
  }
}

// The wasm import is a compiled WebAssembly.Module under wrangler and the vitest workers pool
// (src/types/modules.d.ts); the kernel is instantiated on first use and then reused.
import kernelModule from '../../wasm/preprocess/build/preprocess.wasm';
import { PreprocessKernel, type KernelJob } from '../../wasm/preprocess/index.js';
import type { Reduction } from './reference.js';
import type { PreprocessSpec, RgbImage } from './types.js';

export type { PreprocessSpec, RgbImage } from './types.js';
export type { Reduction } from './reference.js';

let kernel: PreprocessKernel | undefined;

/** The isolate's kernel, instantiated on first use (it is also src/pipeline's Preprocessor). */
export const getKernel = (): PreprocessKernel => (kernel ??= PreprocessKernel.fromModule(kernelModule));

/**
 * Resize + center crop + normalize one image into `out` (CHW float32) at `offset`. With
 * `reduction`, `img` is a 1/scale decode resized with the full image's geometry.
 */
export function preprocess(img: RgbImage, spec: PreprocessSpec, out: Float32Array, offset = 0, reduction?: Reduction): void {
  getKernel().run(img, spec, out, offset, reduction);
}

/**
 * The same, fed row by row by a streaming decoder: `write` is a RowSink (rows in order, each
 * once), `finish` writes the tensor. Synchronous use only: the kernel holds one image at a time.
 */
export function preprocessRows(width: number, height: number, spec: PreprocessSpec, reduction?: Reduction): KernelJob {
  return getKernel().begin(width, height, spec, reduction);
}

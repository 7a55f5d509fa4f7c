// The wasm import is a compiled WebAssembly.Module under wrangler and the vitest workers pool
// (src/types/modules.d.ts); the kernel is instantiated on first use and then reused.
import kernelModule from '../../wasm/preprocess/build/preprocess.wasm';
import { PreprocessKernel } from '../../wasm/preprocess/index.js';
import type { PreprocessSpec, RgbImage } from './types.js';

export type { PreprocessSpec, RgbImage } from './types.js';

let kernel: PreprocessKernel | undefined;

/** Resize + center crop + normalize one image into `out` (CHW float32) at `offset`. */
export function preprocess(img: RgbImage, spec: PreprocessSpec, out: Float32Array, offset = 0): void {
  kernel ??= PreprocessKernel.fromModule(kernelModule);
  kernel.run(img, spec, out, offset);
}

/**
 * The Worker's preprocessing kernel (wasm/preprocess, bit-identical to the reference) for the
 * Node tools: the quantizer's calibration, `eval`, `view`, the warm-up build and the benchmark
 * all load it here. The Worker itself imports the same file as a wasm module (src/preprocess).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PreprocessKernel } from '../../wasm/preprocess/index';
import { ROOT } from './paths';

export const KERNEL_WASM = join(ROOT, 'wasm/preprocess/build/preprocess.wasm');

// The project's types are workerd's, where WebAssembly.Module cannot be constructed from bytes;
// under Node it can.
const NodeWasmModule = WebAssembly.Module as unknown as new (bytes: Uint8Array) => WebAssembly.Module;

let compiled: WebAssembly.Module | undefined;

/**
 * A new kernel instance (its own wasm memory). A fresh clone has no build output (wasm
 * build folders are not committed): the kernel is then built first, which takes a few seconds.
 */
export function loadKernel(): PreprocessKernel {
  compiled ??= new NodeWasmModule(readFileSync(builtKernel()));
  return PreprocessKernel.fromModule(compiled);
}

function builtKernel(): string {
  if (existsSync(KERNEL_WASM)) return KERNEL_WASM;
  console.error('the preprocessing kernel is not built yet: running `npm run build:wasm`');
  const result = spawnSync('npm', ['run', 'build:wasm'], { cwd: ROOT, stdio: ['ignore', process.stderr, 'inherit'] });
  if (result.status !== 0 || !existsSync(KERNEL_WASM)) {
    throw new Error(`could not build ${KERNEL_WASM} (npm run build:wasm ${result.error?.message ?? `exited ${result.status}`}); run \`npm run build\` and retry`);
  }
  return KERNEL_WASM;
}

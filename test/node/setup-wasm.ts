// Every node test file: `.wasm` imports of the Worker's modules (our libwebp build for WebP, our
// PNG rows module: zlib + unfilter) give a compiled WebAssembly.Module, as under wrangler and the workers pool.
import { readFileSync } from 'node:fs';
import { vi } from 'vitest';

// Node's WebAssembly.Module compiles from bytes (the workers types only know the precompiled kind).
const compile = (path: string): WebAssembly.Module => {
  const NodeWasmModule = WebAssembly.Module as unknown as new (bytes: Uint8Array) => WebAssembly.Module;
  return new NodeWasmModule(readFileSync(new URL(path, import.meta.url)));
};

vi.mock('../../wasm/webp/webp_dec.wasm', () => ({ default: compile('../../wasm/webp/webp_dec.wasm') }));
vi.mock('../../wasm/png/png_rows.wasm', () => ({ default: compile('../../wasm/png/png_rows.wasm') }));

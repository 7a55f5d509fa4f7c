// Every node test file: `.wasm` imports of the Worker's modules (our libwebp build for WebP) give
// a compiled WebAssembly.Module, as under wrangler and the workers pool.
import { readFileSync } from 'node:fs';
import { vi } from 'vitest';

vi.mock('../../wasm/webp/webp_dec.wasm', () => {
  // Node's WebAssembly.Module compiles from bytes (the workers types only know the precompiled kind).
  const NodeWasmModule = WebAssembly.Module as unknown as new (bytes: Uint8Array) => WebAssembly.Module;
  return { default: new NodeWasmModule(readFileSync(new URL('../../wasm/webp/webp_dec.wasm', import.meta.url))) };
});

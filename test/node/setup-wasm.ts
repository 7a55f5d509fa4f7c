// Every node test file: `.wasm` imports of the Worker's modules (libwebp for WebP) give a
// compiled WebAssembly.Module, as under wrangler and the workers pool.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { vi } from 'vitest';

vi.mock('@jsquash/webp/codec/dec/webp_dec.wasm', () => {
  const path = createRequire(import.meta.url).resolve('@jsquash/webp/codec/dec/webp_dec.wasm');
  // Node's WebAssembly.Module compiles from bytes (the workers types only know the precompiled kind).
  const NodeWasmModule = WebAssembly.Module as unknown as new (bytes: Uint8Array) => WebAssembly.Module;
  return { default: new NodeWasmModule(readFileSync(path)) };
});

/**
 * libwebp's compiled module (wasm/webp/webp_dec.wasm): a WebAssembly.Module under wrangler and
 * the vitest workers pool (wrangler's CompiledWasm rule, src/types/modules.d.ts), in Node through
 * models/src/wasm-loader.mjs or test/node/setup-wasm.ts. Only ./index.ts imports this, with a
 * top-level `await import()`, so that a Node tool that registers the .wasm loader while it starts
 * (models/src/node-wasm.ts, imported first) has it in place by then, and one that never does
 * still loads src/image (it only cannot decode WebP).
 */
import webpWasm from '../../../wasm/webp/webp_dec.wasm';

export default webpWasm;

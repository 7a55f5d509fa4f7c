/**
 * The PNG rows module (wasm/png/png_rows.wasm: zlib's inflate and the unfiltering): a
 * WebAssembly.Module under wrangler and the vitest workers pool (wrangler's CompiledWasm rule,
 * src/types/modules.d.ts), in Node through models/src/wasm-loader.mjs or test/node/setup-wasm.ts.
 * Only ./wasm-rows.ts imports this, with a top-level `await import()`, for the reason given in
 * ../webp/module.ts.
 */
import pngRowsWasm from '../../../wasm/png/png_rows.wasm';

export default pngRowsWasm;

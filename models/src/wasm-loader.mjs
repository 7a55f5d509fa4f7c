// Node ESM loader hook: `import mod from 'x.wasm'` gives a compiled WebAssembly.Module, as
// wrangler and the workers test pool do for the Worker. Lets Node tools (the models CLI, the
// benchmark) run the Worker's own modules that import wasm (libwebp for WebP uploads).
// Registered by models/src/node-wasm.ts.
export async function load(url, context, nextLoad) {
  if (!url.endsWith('.wasm')) return nextLoad(url, context);
  return {
    format: 'module',
    shortCircuit: true,
    source: `import { readFileSync } from 'node:fs';\nexport default new WebAssembly.Module(readFileSync(new URL(${JSON.stringify(url)})));\n`,
  };
}

// Module types for the non-JS imports that wrangler (and the vitest workers pool) bundle.

// Wrangler's CompiledWasm rule: a .wasm import is a compiled module, because Workers
// refuse to compile WebAssembly from bytes at run time.
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}

// Wrangler's Text rule.
declare module '*.txt' {
  const text: string;
  export default text;
}

// Wrangler's Data rule.
declare module '*.bin' {
  const data: ArrayBuffer;
  export default data;
}

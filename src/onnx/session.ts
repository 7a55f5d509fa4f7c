/**
 * The only module that imports onnxruntime-web. Everything the rest of the Worker needs from
 * it is a `Session` that turns a float32 batch tensor into float32 logits.
 *
 * Workers refuse to compile WebAssembly from bytes at run time, and onnxruntime-web's
 * Emscripten glue insists on calling `WebAssembly.instantiate(bytes, imports)`. So wrangler
 * bundles ORT's .wasm as a precompiled `WebAssembly.Module`, we hand the glue a marker in place
 * of the binary, and while ORT initialises we answer the glue's instantiate call for that
 * marker (and only that marker) from the precompiled module. See `withPrecompiledOrt`.
 */
import * as ort from 'onnxruntime-web/wasm';
import ortWasmModule from 'onnxruntime-web/ort-wasm-simd-threaded.wasm';

export interface Session {
  readonly inputName: string;
  readonly outputName: string;
  /** Runs one batch: `data` is NCHW float32 of shape `dims`; returns the output tensor data. */
  run(data: Float32Array, dims: readonly number[]): Promise<{ data: Float32Array; dims: readonly number[] }>;
  release(): Promise<void>;
}

export interface SessionOptions {
  inputName: string;
  outputName: string;
  /** See ModelManifest.session. */
  disablePrepacking?: boolean;
}

/**
 * Bytes that stand in for ORT's .wasm binary. The glue copies them (`new Uint8Array(binary)`)
 * before calling `WebAssembly.instantiate`, so they are recognised by content. A real wasm
 * binary starts with "\0asm", so no real module can be mistaken for the marker.
 */
const MARKER = new TextEncoder().encode('edge-resnet:precompiled-ort-wasm');

function isMarker(source: unknown): boolean {
  let bytes: Uint8Array;
  if (source instanceof Uint8Array) bytes = source;
  else if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
  else return false;
  return bytes.length === MARKER.length && bytes.every((b, i) => b === MARKER[i]);
}

ort.env.wasm.numThreads = 1; // isolates have no threads
ort.env.wasm.proxy = false; // and no workers to proxy to
ort.env.wasm.wasmBinary = MARKER;
ort.env.logLevel = 'error';

/** Settles once ORT's backend has been initialised (by the first session creation). */
let backendReady: Promise<unknown> | undefined;

/**
 * ORT initialises its WASM backend inside the first `InferenceSession.create`, so that call
 * (and only that one) runs with the instantiate hook; later ones wait for it to settle.
 */
async function createOrtSession(model: Uint8Array, options: ort.InferenceSession.SessionOptions) {
  if (backendReady) {
    await backendReady;
    return ort.InferenceSession.create(model, options);
  }
  const first = withPrecompiledOrt(() => ort.InferenceSession.create(model, options));
  backendReady = first.catch(() => undefined);
  return first;
}

/** Runs `fn` with `WebAssembly.instantiate` answering the ORT marker from the bundled module. */
async function withPrecompiledOrt<T>(fn: () => Promise<T>): Promise<T> {
  const original = WebAssembly.instantiate;
  const patched = function (source: unknown, imports?: WebAssembly.Imports) {
    if (isMarker(source)) {
      return WebAssembly.instantiate(ortWasmModule, imports).then((instance) => ({ instance, module: ortWasmModule }));
    }
    return (original as (s: unknown, i?: WebAssembly.Imports) => Promise<unknown>).call(WebAssembly, source, imports);
  };
  WebAssembly.instantiate = patched as typeof WebAssembly.instantiate;
  try {
    return await fn();
  } finally {
    WebAssembly.instantiate = original;
  }
}

/** Creates a session from model bytes. The bytes may be dropped by the caller afterwards. */
export async function createSession(model: Uint8Array, options: SessionOptions): Promise<Session> {
  const session = await createOrtSession(model, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    // Without arenas the heap returns to a steady size between requests instead of keeping
    // the peak of the largest batch; the isolate's 128 MB is shared by all requests.
    enableCpuMemArena: false,
    ...(options.disablePrepacking ? { extra: { session: { disable_prepacking: '1' } } } : {}),
  });
  if (!session.inputNames.includes(options.inputName) || !session.outputNames.includes(options.outputName)) {
    await session.release();
    throw new Error(
      `model has inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}], ` +
        `manifest says ${options.inputName} -> ${options.outputName}`,
    );
  }
  let queue: Promise<unknown> = Promise.resolve();
  return {
    inputName: options.inputName,
    outputName: options.outputName,
    // ORT's wasm backend runs one inference at a time; concurrent requests queue here
    // instead of interleaving calls into the same session.
    run(data, dims) {
      const result = queue.then(() => runOnce(data, dims));
      queue = result.catch(() => undefined);
      return result;
    },
    release: () => queue.then(() => session.release()),
  };

  async function runOnce(data: Float32Array, dims: readonly number[]) {
      const input = new ort.Tensor('float32', data, dims);
      const outputs = await session.run({ [options.inputName]: input }, [options.outputName]);
      const output = outputs[options.outputName];
      try {
        if (!output || output.type !== 'float32') throw new Error(`output ${options.outputName} is not float32`);
        // getData() copies out of the wasm heap, so the tensor can be disposed right away.
        return { data: (await output.getData()) as Float32Array, dims: output.dims };
      } finally {
        input.dispose();
        output?.dispose();
      }
  }
}

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
import type { Tensor } from './tensor';
// Built by `npm run build:warmup` (models/src/warmup.ts); wrangler bundles .bin files as ArrayBuffers.
import warmupModel from './warmup.bin';

export interface Session {
  /** Runs one batch through the model (or a stage of it) and returns its one output. */
  run(input: Tensor): Promise<Tensor>;
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

/** ORT's heap: the threaded build imports its (shared) memory rather than exporting it. */
let ortMemory: WebAssembly.Memory | undefined;

function findMemory(imports: WebAssembly.Imports | undefined): WebAssembly.Memory | undefined {
  for (const module of Object.values(imports ?? {})) {
    for (const value of Object.values(module)) if (value instanceof WebAssembly.Memory) return value;
  }
  return undefined;
}

/** Runs `fn` with `WebAssembly.instantiate` answering the ORT marker from the bundled module. */
async function withPrecompiledOrt<T>(fn: () => Promise<T>): Promise<T> {
  const original = WebAssembly.instantiate;
  const patched = function (source: unknown, imports?: WebAssembly.Imports) {
    if (isMarker(source)) {
      ortMemory = findMemory(imports);
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

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  executionProviders: ['wasm'],
  // 'all' measured fastest warm (ResNet-50 int8: 'disabled' 9% slower, 'extended' slower
  // still); it costs some session-creation time, which the cold path pays once.
  graphOptimizationLevel: 'all',
  // Without arenas the heap returns to a steady size between requests instead of keeping
  // the peak of the largest batch; the isolate's 128 MB is shared by all requests.
  enableCpuMemArena: false,
};

let warmedUp: Promise<void> | undefined;

/**
 * Initialises onnxruntime and runs a tiny int8 ResNet (models/src/warmup.ts) twice, so that
 * V8 has compiled the kernels every ResNet uses before the first real request: in a fresh
 * isolate that request would otherwise pay for onnxruntime's initialisation and for compiling
 * the kernels on their first call. Runs once per isolate.
 */
export function warmUp(): Promise<void> {
  warmedUp ??= (async () => {
    const session = await createOrtSession(new Uint8Array(warmupModel), SESSION_OPTIONS);
    const input = new ort.Tensor('float32', new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
    try {
      for (let i = 0; i < 2; i++) {
        const outputs = await session.run({ [session.inputNames[0]!]: input });
        for (const output of Object.values(outputs)) output.dispose();
      }
    } finally {
      input.dispose();
      await session.release();
    }
  })();
  return warmedUp;
}

/** Creates a session from model bytes. The bytes may be dropped by the caller afterwards. */
export async function createSession(model: Uint8Array, options: SessionOptions): Promise<Session> {
  const session = await createOrtSession(model, {
    ...SESSION_OPTIONS,
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
    // ORT's wasm backend runs one inference at a time; concurrent requests queue here
    // instead of interleaving calls into the same session.
    run(input) {
      const result = queue.then(() => runOnce(input));
      queue = result.catch(() => undefined);
      return result;
    },
    release: () => queue.then(() => session.release()),
  };

  async function runOnce(tensor: Tensor): Promise<Tensor> {
    const input = tensor.type === 'float32' ? new ort.Tensor('float32', tensor.data, tensor.dims) : new ort.Tensor('uint8', tensor.data, tensor.dims);
    let output: ort.Tensor | undefined;
    try {
      output = (await session.run({ [options.inputName]: input }, [options.outputName]))[options.outputName];
      // getData() copies out of the wasm heap, so the tensor can be disposed right away.
      if (output?.type === 'float32') return { type: 'float32', data: (await output.getData()) as Float32Array, dims: output.dims };
      if (output?.type === 'uint8') return { type: 'uint8', data: (await output.getData()) as Uint8Array, dims: output.dims };
      throw new Error(`output ${options.outputName} is ${output?.type ?? 'missing'}, not float32 or uint8`);
    } finally {
      input.dispose();
      output?.dispose();
    }
  }
}

/**
 * Bytes of onnxruntime's WebAssembly heap in this isolate (it grows, never shrinks), or
 * undefined before the backend exists. What a model costs against the isolate's 128 MB.
 */
export function wasmHeapBytes(): number | undefined {
  return ortMemory?.buffer.byteLength;
}

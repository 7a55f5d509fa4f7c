/**
 * One model in one runtime, in a fresh Node process (so that "cold" is really cold and the
 * wasm heap, which never shrinks, holds this model's peak only), driven over stdin so that the
 * parent can interleave its runs with the Worker's requests:
 *
 *   node --expose-gc --import tsx bench/node-child.ts <ort-web|ort-node> <model.onnx> <input.f32|input.u8> <warmup> [prepacking|no-prepacking] [dims]
 *
 * The input is raw float32 (.f32) or uint8 (.u8) data of shape `dims` (default 1,3,224,224; a
 * later stage of a split model takes the tensor its previous stage hands over).
 *
 * On start: creates the session, runs once (the cold path), runs the warm-up, prints
 * `COLD <json>`. Then for each stdin line `run K` prints `TIMES <json array of ms>`; for `end`
 * prints `END <json>` (memory after all runs) and exits.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ChildCold, ChildEnd, NodeRuntime } from './node-runtimes';

const [runtimeArg, modelPath, inputPath, warmupArg, prepackingArg, dimsArg] = process.argv.slice(2);
if (runtimeArg !== 'ort-web' && runtimeArg !== 'ort-node') throw new Error(`unknown runtime ${runtimeArg}`);
const runtime: NodeRuntime = runtimeArg;
const warmup = Number(warmupArg);
// A manifest's session.disablePrepacking, applied as src/onnx/session.ts applies it.
const extra = prepackingArg === 'no-prepacking' ? { extra: { session: { disable_prepacking: '1' } } } : {};
if (!modelPath || !inputPath || !(warmup >= 0)) throw new Error('usage: node-child.ts <runtime> <model> <input> <warmup>');

/**
 * onnxruntime-web's Emscripten glue creates its heap with `new WebAssembly.Memory` (shared,
 * since the only wasm binary it ships is the threaded one). Wrapping the constructor before
 * ORT loads is the one way to see that heap from outside.
 */
const memories: WebAssembly.Memory[] = [];
if (runtime === 'ort-web') {
  const Original = WebAssembly.Memory;
  const Capturing = function (descriptor: WebAssembly.MemoryDescriptor): WebAssembly.Memory {
    const memory = new Original(descriptor);
    memories.push(memory);
    return memory;
  } as unknown as typeof WebAssembly.Memory;
  Capturing.prototype = Original.prototype;
  Object.defineProperty(WebAssembly, 'Memory', { value: Capturing, configurable: true, writable: true });
}

const gc = (globalThis as { gc?: () => void }).gc;
const heapUsed = (): number => {
  gc?.();
  return process.memoryUsage().heapUsed;
};
const wasmHeap = (): number => memories.reduce((a, m) => a + m.buffer.byteLength, 0);

interface Runner {
  create(): Promise<void>;
  run(): Promise<ArrayLike<number>>;
}

const model = new Uint8Array(readFileSync(modelPath));
const raw = readFileSync(inputPath);
const inputType = inputPath.endsWith('.u8') ? 'uint8' : 'float32';
const input = inputType === 'uint8' ? new Uint8Array(raw) : new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4).slice();
const dims = (dimsArg ?? '1,3,224,224').split(',').map(Number);

// The same session options as src/onnx/session.ts, so that only the runtime differs.
async function ortWeb(): Promise<Runner> {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>> | undefined;
  return {
    async create() {
      session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all', enableCpuMemArena: false, ...extra });
    },
    async run() {
      const s = session!;
      const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor(inputType, input, dims) });
      const y = out[s.outputNames[0]!]!;
      const data = (await y.getData()) as Float32Array | Uint8Array;
      y.dispose();
      return data;
    },
  };
}

async function ortNode(): Promise<Runner> {
  const ort = await import('onnxruntime-node');
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>> | undefined;
  return {
    async create() {
      session = await ort.InferenceSession.create(model, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        enableCpuMemArena: false,
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        ...extra,
      });
    },
    async run() {
      const s = session!;
      const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor(inputType, input, dims) });
      return out[s.outputNames[0]!]!.data as Float32Array | Uint8Array;
    },
  };
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
const send = (tag: string, value: unknown): void => void process.stdout.write(`${tag} ${JSON.stringify(value)}\n`);

const tImport = performance.now();
const runner = runtime === 'ort-web' ? await ortWeb() : await ortNode();
const importMs = performance.now() - tImport;
const heap0 = heapUsed();
const t0 = performance.now();
await runner.create();
const createMs = performance.now() - t0;
const wasmAfterCreate = wasmHeap();
const heapAfterCreate = heapUsed();
const t1 = performance.now();
const first = await runner.run();
const firstRunMs = performance.now() - t1;
const wasmAfterRun = wasmHeap();
const heapAfterRun = heapUsed();
for (let i = 0; i < warmup; i++) await runner.run();
const cold: ChildCold = {
  importMs,
  createMs,
  firstRunMs,
  top1: argmax(first),
  memory:
    runtime === 'ort-web'
      ? {
          wasmHeapAfterCreate: wasmAfterCreate,
          wasmHeapAfterRun: wasmAfterRun,
          jsHeapDeltaAfterCreate: heapAfterCreate - heap0,
          jsHeapDeltaAfterRun: heapAfterRun - heap0,
          memories: memories.length,
        }
      : undefined,
};
send('COLD', cold);

for await (const line of createInterface({ input: process.stdin })) {
  const [command, arg] = line.trim().split(' ');
  if (command === 'run') {
    const times: number[] = [];
    for (let i = 0; i < Number(arg); i++) {
      const t = performance.now();
      await runner.run();
      times.push(performance.now() - t);
    }
    send('TIMES', times);
  } else if (command === 'end') {
    const end: ChildEnd = { wasmHeapPeak: wasmHeap() };
    send('END', end);
    break;
  }
}
// The answer is out; do not wait for the runtimes' handles to wind down.
process.exit(0);

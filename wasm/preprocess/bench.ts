/**
 * Kernel vs TypeScript reference speed in Node: `npx tsx wasm/preprocess/bench.ts`
 * (after `npm run build:wasm`). Runs are interleaved so load from other processes hits both
 * alike; prints the median and minimum of each and the ratio of the medians.
 */
import { readFileSync } from 'node:fs';
import { IMAGENET_PREPROCESS } from '../../src/models/manifest.js';
import { preprocessReference } from '../../src/preprocess/reference.js';
import { PreprocessKernel } from './index.js';

// The project is typed for workerd, where a Module cannot be compiled from bytes; Node can.
const NodeWasmModule = WebAssembly.Module as unknown as new (bytes: Uint8Array) => WebAssembly.Module;
const kernel = PreprocessKernel.fromModule(
  new NodeWasmModule(readFileSync(new URL('./build/preprocess.wasm', import.meta.url))),
);
const spec = IMAGENET_PREPROCESS;

function sorted(a: number[]): number[] {
  return [...a].sort((x, y) => x - y);
}

for (const [width, height, runs] of [
  [640, 480, 101],
  [4032, 3024, 21],
] as const) {
  const data = new Uint8Array(width * height * 3);
  let s = 1;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  const img = { width, height, data };
  const out = new Float32Array(3 * spec.cropHeight * spec.cropWidth);
  const ref: number[] = [];
  const wasm: number[] = [];
  for (let i = 0; i < 3; i++) {
    preprocessReference(img, spec, out);
    kernel.run(img, spec, out, 0);
  }
  for (let i = 0; i < runs; i++) {
    let t = performance.now();
    preprocessReference(img, spec, out);
    ref.push(performance.now() - t);
    t = performance.now();
    kernel.run(img, spec, out, 0);
    wasm.push(performance.now() - t);
  }
  const r = sorted(ref);
  const k = sorted(wasm);
  const med = (a: number[]): number => a[a.length >> 1] as number;
  console.log(
    `${width}x${height}: reference median ${med(r).toFixed(2)} ms (min ${(r[0] as number).toFixed(2)}), ` +
      `kernel median ${med(k).toFixed(2)} ms (min ${(k[0] as number).toFixed(2)}), ` +
      `ratio ${(med(r) / med(k)).toFixed(1)}x, kernel memory ${(kernel.memoryBytes / 1048576).toFixed(1)} MiB`,
  );
}

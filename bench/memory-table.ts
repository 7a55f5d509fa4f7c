/**
 * The README's size, memory and fidelity table for every built int8 model
 * (`models/out/<id>/int8`, e.g. from scripts/all-models.sh): file size, onnxruntime-web's wasm
 * heap after session creation and after one inference, each model in a fresh Node process
 * (bench/node-child.ts), whether that fits an isolate, and the fidelity `quantize` measured.
 *
 *   npx tsx bench/memory-table.ts [--out models/out] > bench/memory.md
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MODEL_IDS } from '../src/models/manifest';
import { modelDir, DEFAULT_OUT } from '../models/src/commands/command';
import { readManifest } from '../models/src/local';
import { ROOT } from '../models/src/upload';
import { runNodeChild } from './node-runtimes';

/** Workers' isolate limit; the request path (decode, tensors, JS heap) needs its share too. */
const ISOLATE_BYTES = 128 * 1e6;
const MiB = 1024 * 1024;

const { values } = parseArgs({ options: { out: { type: 'string', default: DEFAULT_OUT } } });
const scratch = join(ROOT, 'bench/tmp');
await mkdir(scratch, { recursive: true });
const input = join(scratch, 'zeros-1x3x224x224.f32');
await writeFile(input, new Uint8Array(3 * 224 * 224 * 4));

const rows = [
  '| model | int8 file (of fp32) | wasm heap after session creation | after one inference | fits 128 MB | logit cosine mean / min vs fp32 | top-1 agreement |',
  '|---|---|---|---|---|---|---|',
];
for (const id of MODEL_IDS) {
  const dir = modelDir(values.out, id, 'int8');
  if (!existsSync(join(dir, 'model.onnx'))) continue;
  const manifest = await readManifest(dir);
  const run = await runNodeChild('ort-web', join(dir, 'model.onnx'), input, 0, 1);
  const m = run.memory!;
  const fits = m.wasmHeapPeak < ISOLATE_BYTES;
  const fp32 = await readManifest(modelDir(values.out, id, 'fp32'));
  const f = manifest.notes?.fidelity as { cosineMean: number; cosineMin: number; top1Agreement: number; images: number } | undefined;
  rows.push(
    `| ${id} | ${(manifest.bytes / 1e6).toFixed(1)} MB (${((100 * manifest.bytes) / fp32.bytes).toFixed(0)}%) | ` +
      `${(m.wasmHeapAfterCreate / MiB).toFixed(0)} MiB | ${(m.wasmHeapPeak / MiB).toFixed(0)} MiB | ` +
      `${fits ? 'yes' : `**no** (${(m.wasmHeapPeak / ISOLATE_BYTES).toFixed(2)}x)`} | ` +
      (f ? `${f.cosineMean.toFixed(4)} / ${f.cosineMin.toFixed(4)} | ${(100 * f.top1Agreement).toFixed(0)}% of ${f.images} |` : '- | - |'),
  );
  console.error(rows.at(-1));
}
console.log(rows.join('\n'));

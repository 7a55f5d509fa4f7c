/**
 * The README's size, memory and fidelity table for every built int8 model
 * (`models/out/<id>/int8`, e.g. from scripts/all-models.sh): file size, onnxruntime-web's wasm
 * heap after session creation and after one inference with the manifest's session settings,
 * each model (or, for a split model, each stage: what one isolate holds) in a fresh Node
 * process (bench/node-child.ts), whether that fits an isolate, and the fidelity `quantize` measured.
 *
 *   npx tsx bench/memory-table.ts [--out models/out] > bench/memory.md
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MODEL_IDS, stageFile, type ModelManifest, type TensorSpec } from '../src/models/manifest';
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

/** A zero tensor for `spec` with batch 1, written once per shape. */
async function zeros(spec: TensorSpec): Promise<{ path: string; dims: number[] }> {
  const dims = spec.shape.map((d, i) => (i === 0 ? 1 : Number(d)));
  const count = dims.reduce((a, b) => a * b, 1);
  const path = join(scratch, `zeros-${dims.join('x')}.${spec.type === 'uint8' ? 'u8' : 'f32'}`);
  await writeFile(path, new Uint8Array(count * (spec.type === 'uint8' ? 1 : 4)));
  return { path, dims };
}

/** Heap of one session (a whole model or a stage), in a fresh process, with the manifest's session settings. */
async function heap(file: string, input: TensorSpec, session: ModelManifest['session']): Promise<{ afterCreate: number; peak: number }> {
  const { path, dims } = await zeros(input);
  const run = await runNodeChild('ort-web', file, path, 0, 1, { disablePrepacking: session?.disablePrepacking, inputDims: dims });
  return { afterCreate: run.memory!.wasmHeapAfterCreate, peak: run.memory!.wasmHeapPeak };
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(0)} MiB`;
const fits = (bytes: number): string => (bytes < ISOLATE_BYTES ? 'yes' : `**no** (${(bytes / ISOLATE_BYTES).toFixed(2)}x)`);

const rows = [
  '| model | int8 file (of fp32) | served as | wasm heap after session creation | after one inference | fits 128 MB | logit cosine mean / min vs fp32 | top-1 agreement |',
  '|---|---|---|---|---|---|---|---|',
];
for (const id of MODEL_IDS) {
  const dir = modelDir(values.out, id, 'int8');
  if (!existsSync(join(dir, 'model.onnx'))) continue;
  const manifest = await readManifest(dir);
  const fp32 = await readManifest(modelDir(values.out, id, 'fp32'));
  const f = manifest.notes?.fidelity as { cosineMean: number; cosineMin: number; top1Agreement: number; images: number } | undefined;
  const fidelity = f ? `${f.cosineMean.toFixed(4)} / ${f.cosineMin.toFixed(4)} | ${(100 * f.top1Agreement).toFixed(0)}% of ${f.images} |` : '- | - |';
  const size = `${(manifest.bytes / 1e6).toFixed(1)} MB (${((100 * manifest.bytes) / fp32.bytes).toFixed(0)}%)`;
  const inputSpec: TensorSpec = { name: manifest.input.name, type: 'float32', shape: manifest.input.shape };
  // A split model is measured stage by stage: each stage is what one isolate holds.
  const parts = manifest.stages
    ? manifest.stages.map((stage, k) => ({ file: join(dir, stageFile(k)), input: stage.input, session: stage.session, label: `stage ${k + 1} of ${manifest.stages!.length} (${(stage.bytes / 1e6).toFixed(1)} MB)` }))
    : [{ file: join(dir, 'model.onnx'), input: inputSpec, session: manifest.session, label: 'whole' }];
  for (const [i, part] of parts.entries()) {
    const m = await heap(part.file, part.input, part.session);
    const first = i === 0;
    rows.push(`| ${first ? id : ''} | ${first ? size : ''} | ${part.label} | ${mib(m.afterCreate)} | ${mib(m.peak)} | ${fits(m.peak)} | ${first ? fidelity : ' | |'}`);
    console.error(rows.at(-1));
  }
}
console.log(rows.join('\n'));

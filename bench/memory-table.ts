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
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MODEL_IDS } from '../src/models/manifest';
import { servedParts, sessionHeap } from './memory';
import { DEFAULT_OUT, modelDir, readManifest, ROOT } from '../models/src/paths';

/** Workers' isolate limit; the request path (decode, tensors, JS heap) needs its share too. */
const ISOLATE_BYTES = 128 * 1e6;
const MiB = 1024 * 1024;

const { values } = parseArgs({ options: { out: { type: 'string', default: DEFAULT_OUT } } });
const scratch = join(ROOT, 'bench/tmp');

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
  // A split model is measured stage by stage: each stage is what one isolate holds.
  const parts = servedParts(dir, manifest);
  for (const [i, part] of parts.entries()) {
    const label = part.stage === undefined ? 'whole' : `stage ${part.stage + 1} of ${parts.length} (${(part.bytes / 1e6).toFixed(1)} MB)`;
    const h = await sessionHeap(scratch, part.file, part.input, part.session);
    const first = i === 0;
    rows.push(`| ${first ? id : ''} | ${first ? size : ''} | ${label} | ${mib(h.wasmHeapAfterCreate)} | ${mib(h.wasmHeapPeak)} | ${fits(h.wasmHeapPeak)} | ${first ? fidelity : ' | |'}`);
    console.error(rows.at(-1));
  }
}
console.log(rows.join('\n'));

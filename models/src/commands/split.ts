import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stageFile, type ModelManifest, type StageManifest } from '../../../src/models/manifest';
import { readManifest, sha256 } from '../local';
import { splitModel } from '../split';
import { DEFAULT_OUT, modelDir, modelIds, parse, type Command } from './command';
import { LOW_MEMORY_ABOVE_BYTES } from './quantize';

const usage =
  'split <id|all> [--stages N] [--max-stage-mb 26] [--out models/out]   cut an int8 model into stages, each for its own isolate';

/**
 * The largest model measured to serve from one isolate with room for the request path:
 * ResNet-50 int8, 25.8 MB of weights, ~84 MiB of wasm heap (README, Models). Larger int8 models
 * are split into stages no bigger than this.
 */
export const MAX_STAGE_BYTES = 26e6;

export const split: Command = {
  name: 'split',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      stages: { type: 'string' },
      'max-stage-mb': { type: 'string', default: String(MAX_STAGE_BYTES / 1e6) },
      out: { type: 'string', default: DEFAULT_OUT },
    });
    const stages = values.stages === undefined ? undefined : Number(values.stages);
    if (stages !== undefined && !(Number.isInteger(stages) && stages >= 1 && stages <= 8)) {
      throw new Error(`--stages must be an integer from 1 to 8, got ${values.stages}`);
    }
    const maxStageBytes = Number(values['max-stage-mb']) * 1e6;
    if (!(maxStageBytes > 0)) throw new Error(`--max-stage-mb must be a positive number, got ${values['max-stage-mb']}`);
    for (const id of modelIds(positionals[0], usage)) {
      const dir = modelDir(values.out, id, 'int8');
      if (!existsSync(join(dir, 'model.onnx'))) throw new Error(`${id}: no int8 model in ${dir} (run quantize first)`);
      const manifest = await splitOne(dir, stages ?? Math.ceil((await readManifest(dir)).bytes / maxStageBytes));
      const parts = manifest.stages ?? [];
      console.log(
        parts.length === 0
          ? `${id}: ${(manifest.bytes / 1e6).toFixed(1)} MB fits one isolate; served whole`
          : `${id}: ${parts.length} stages of ${parts.map((s) => (s.bytes / 1e6).toFixed(1)).join(' + ')} MB, ` +
              `handing over ${parts.slice(0, -1).map((s) => `${s.output.type}[${s.output.shape.join('x')}]`).join(', ')}; ` +
              `chained output equals the whole model's (max |diff| ${(manifest.notes?.split as { maxAbsDiff: number }).maxAbsDiff})`,
      );
    }
  },
};

/**
 * Writes `stage-<k>.onnx` beside model.onnx and lists them in the manifest; one stage means
 * "serve whole", which removes an earlier split. The chained stages are checked against the
 * whole model before anything is written.
 */
export async function splitOne(dir: string, stages: number): Promise<ModelManifest> {
  const manifest = await readManifest(dir);
  for (const [k] of (manifest.stages ?? []).entries()) await rm(join(dir, stageFile(k)), { force: true });
  const { stages: _, notes: { split: __, ...notes } = {}, ...rest } = manifest;
  let updated: ModelManifest = { ...rest, notes };
  if (stages > 1) {
    const result = await splitModel(new Uint8Array(await readFile(join(dir, 'model.onnx'))), stages);
    // Identical kernels on identical inputs: anything but an exact match is a broken cut.
    if (result.maxAbsDiff !== 0) throw new Error(`${manifest.id}: chained stages differ from the whole model by ${result.maxAbsDiff}`);
    const entries: StageManifest[] = [];
    for (const [k, stage] of result.stages.entries()) {
      await writeFile(join(dir, stageFile(k)), stage.model);
      entries.push({
        sha256: sha256(stage.model),
        bytes: stage.model.byteLength,
        input: stage.input,
        output: stage.output,
        // Each stage is small enough to keep onnxruntime's faster pre-packed weights.
        ...(stage.model.byteLength > LOW_MEMORY_ABOVE_BYTES ? { session: { disablePrepacking: true } } : {}),
      });
    }
    updated = { ...updated, stages: entries, notes: { ...notes, split: { stages, maxAbsDiff: result.maxAbsDiff, nodes: result.stages.map((s) => s.nodes) } } };
  }
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(updated, null, 2)}\n`);
  return updated;
}

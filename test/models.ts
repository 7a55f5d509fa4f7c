/**
 * The models the tests use, built on demand into models/out/test/<id>/<fp32|int8>/ (the CLI's
 * layout) and reused while their recipe is unchanged.
 *
 * resnet18v1: the full-size ResNet-18 v1: fp32 (47 MB) and the int8 model quantized from it
 *             (12 MB), which is what `npm start` serves and most tests use.
 * resnet18v2: a quarter-width ResNet-18 v2 (fp32), small and fast, for registry edge cases.
 * resnet34v1: an eighth-width ResNet-34 v1 exported with a fixed batch of 1, as the zoo's
 *             opset-7 files are.
 * resnet101v1, resnet50v2: eighth-width int8 models split into stages (`models split`), as
 *             ResNet-101/152 are served: three stages handing over uint8 activations, and two
 *             handing over v2's float residual stream.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelManifest } from '../src/models/manifest';
import { synthesizeModel } from '../models/src/synth';
import { images, quantizeOne } from '../models/src/quantize/files';
import { modelDir, ROOT } from '../models/src/paths';
import { splitOne } from '../models/src/split';

export const TEST_MODEL_DIR = join(ROOT, 'models/out/test');

interface Recipe {
  width: number;
  seed: number;
  batch?: number;
  int8?: boolean;
  /** Split the int8 model into this many stages. */
  stages?: number;
}
const RECIPES: Record<string, Recipe> = {
  resnet18v1: { width: 1, seed: 0, int8: true },
  resnet18v2: { width: 0.25, seed: 1 },
  resnet34v1: { width: 0.125, seed: 2, batch: 1 },
  resnet101v1: { width: 0.125, seed: 3, int8: true, stages: 3 },
  resnet50v2: { width: 0.125, seed: 4, int8: true, stages: 2 },
};
export const TEST_MODEL_IDS = Object.keys(RECIPES);

async function current(dir: string, recipe: Recipe): Promise<ModelManifest | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
    const sameRecipe = manifest.source.includes(`seed=${recipe.seed} width=${recipe.width}`) && manifest.input.shape[0] === (recipe.batch ?? 'N');
    return sameRecipe ? manifest : undefined;
  } catch {
    return undefined; // not built yet
  }
}

export async function ensureTestModel(id: string, variant: 'fp32' | 'int8' = 'fp32'): Promise<{ dir: string; manifest: ModelManifest }> {
  const recipe = RECIPES[id];
  if (!recipe) throw new Error(`no test model recipe for ${id}`);
  if (variant === 'int8' && !recipe.int8) throw new Error(`test model ${id} has no int8 variant`);
  const fp32 = modelDir(TEST_MODEL_DIR, id, 'fp32');
  let manifest = await current(fp32, recipe);
  let rebuilt = false;
  if (!manifest) {
    ({ manifest } = await synthesizeModel(id, { dir: fp32, width: recipe.width, seed: recipe.seed, batch: recipe.batch ?? 'N' }));
    rebuilt = true;
  }
  if (variant === 'fp32') return { dir: fp32, manifest };

  const int8 = modelDir(TEST_MODEL_DIR, id, 'int8');
  const photos = await images(join(ROOT, 'test/fixtures/photos'));
  let quantized = rebuilt ? undefined : await current(int8, recipe);
  // Calibrated on other photos than the fixtures now hold: stale.
  const calibratedOn = (quantized?.notes?.calibration as { images?: string[] } | undefined)?.images ?? [];
  if (calibratedOn.length !== photos.length || photos.some((p, i) => !p.endsWith(calibratedOn[i]!))) quantized = undefined;
  if (!quantized) {
    quantized = await quantizeOne(id, {
      out: TEST_MODEL_DIR,
      calibration: photos,
      evaluation: photos,
      method: 'percentile',
      format: 'qoperator',
      quiet: true,
    });
  }
  if (recipe.stages && quantized.stages?.length !== recipe.stages) quantized = await splitOne(int8, recipe.stages);
  return { dir: int8, manifest: quantized };
}

/** Every test model the workerd tests read (built by their global setup). */
export async function ensureTestModels(): Promise<void> {
  for (const id of TEST_MODEL_IDS) {
    await ensureTestModel(id, 'fp32');
    if (RECIPES[id]!.int8) await ensureTestModel(id, 'int8');
  }
}

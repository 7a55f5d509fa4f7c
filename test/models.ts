/**
 * The models the tests use, built on demand by the generator into models/out/test/ and
 * reused while their recipe is unchanged (the manifest's `source` names seed and width).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelManifest } from '../src/models/manifest';
import { synthesizeModel } from '../models/src/synth';
import { ROOT } from '../models/src/upload';

export const TEST_MODEL_DIR = join(ROOT, 'models/out/test');

/**
 * resnet18v1: the full-size default model (fp32, 47 MB), as `npm start` serves it.
 * resnet18v2: a quarter-width ResNet-18 v2, small and fast, for registry edge cases.
 * resnet34v1-b1: a small model exported with a fixed batch of 1, as the zoo's opset-7 files are.
 */
const RECIPES: Record<string, { model: string; width: number; seed: number; batch?: number }> = {
  resnet18v1: { model: 'resnet18v1', width: 1, seed: 0 },
  resnet18v2: { model: 'resnet18v2', width: 0.25, seed: 1 },
  'resnet34v1-b1': { model: 'resnet34v1', width: 0.125, seed: 2, batch: 1 },
};

export async function ensureTestModel(id: string): Promise<{ dir: string; manifest: ModelManifest }> {
  const recipe = RECIPES[id];
  if (!recipe) throw new Error(`no test model recipe for ${id}`);
  const dir = join(TEST_MODEL_DIR, id);
  try {
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
    if (manifest.source.endsWith(`seed=${recipe.seed} width=${recipe.width}`) && manifest.input.shape[0] === (recipe.batch ?? 'N')) {
      return { dir, manifest };
    }
  } catch {
    // not built yet
  }
  const { model, ...options } = recipe;
  const { manifest } = await synthesizeModel(model, { dir, ...options });
  return { dir, manifest };
}

export const TEST_MODEL_IDS = Object.keys(RECIPES);

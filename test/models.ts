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
 */
const RECIPES: Record<string, { width: number; seed: number }> = {
  resnet18v1: { width: 1, seed: 0 },
  resnet18v2: { width: 0.25, seed: 1 },
};

export async function ensureTestModel(id: string): Promise<{ dir: string; manifest: ModelManifest }> {
  const recipe = RECIPES[id];
  if (!recipe) throw new Error(`no test model recipe for ${id}`);
  const dir = join(TEST_MODEL_DIR, id);
  try {
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
    if (manifest.source.endsWith(`seed=${recipe.seed} width=${recipe.width}`)) return { dir, manifest };
  } catch {
    // not built yet
  }
  const { manifest } = await synthesizeModel(id, { dir, ...recipe });
  return { dir, manifest };
}

export const TEST_MODEL_IDS = Object.keys(RECIPES);

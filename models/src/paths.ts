/**
 * Where the Node tooling (models CLI, benchmark, tests) finds things: the repository root, the
 * fixture photos, and the layout of built models in `models/out`. Everything that needs one of
 * these paths imports it from here, never from a command or from the upload code.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ModelManifest } from '../../src/models/manifest';

export const ROOT = resolve(import.meta.dirname, '../..');

/** The sample photos (CC0, test/fixtures/photos/LICENSE.md): calibration, evaluation, benchmark inputs. */
export const PHOTOS = join(ROOT, 'test/fixtures/photos');

/**
 * Where built models live: `<out>/<id>/<variant>/model.onnx` + `manifest.json` (+ `stage-<k>.onnx`
 * when split), with variant `fp32` (synthesized or fetched from the zoo) or `int8` (made from
 * fp32 by `quantize`).
 */
export const DEFAULT_OUT = join(ROOT, 'models/out');
export type Variant = 'fp32' | 'int8';
export const modelDir = (out: string, id: string, variant: Variant): string => join(out, id, variant);

/** The manifest of a built model, from its folder (see modelDir). */
export async function readManifest(dir: string): Promise<ModelManifest> {
  return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
}

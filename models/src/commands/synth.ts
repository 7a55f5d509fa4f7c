import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { photoTensors } from '../quantize/photos';
import { synthesizeModel } from '../synth';
import { modelIds, parse, type Command } from './command';
import { DEFAULT_OUT, modelDir, ROOT } from '../paths';

const usage =
  'synth <id|all> [--out models/out] [--width 1] [--seed 0] [--bn-from <photos dir>]   architecture-faithful model, synthetic weights (--bn-from: BN statistics measured on photos, ResNet-18/34/50)';

export const synth: Command = {
  name: 'synth',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      out: { type: 'string', default: DEFAULT_OUT },
      width: { type: 'string', default: '1' },
      seed: { type: 'string', default: '0' },
      'bn-from': { type: 'string' },
    });
    const width = Number(values.width);
    const seed = Number(values.seed);
    if (!(width > 0)) throw new Error(`--width must be > 0, got ${values.width}`);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`--seed must be a uint32, got ${values.seed}`);
    const bnPhotos = values['bn-from'] === undefined ? undefined : await photos(values['bn-from']);
    for (const id of modelIds(positionals[0], usage)) {
      const r = await synthesizeModel(id, { dir: modelDir(values.out, id, 'fp32'), width, seed, ...(bnPhotos ? { bnPhotos } : {}) });
      console.log(`${id}: ${r.modelPath} (${(r.manifest.bytes / 1e6).toFixed(1)} MB, ${Math.round(r.buildMs)} ms)`);
    }
  },
};

/** The JPEG/PNG files of a folder, decoded and preprocessed as the Worker does (sorted by name: deterministic). */
async function photos(dir: string): Promise<{ tensors: Float32Array[]; from: string; files: number }> {
  const files = (await readdir(dir)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
  if (files.length === 0) throw new Error(`--bn-from ${dir}: no .jpg or .png files`);
  const tensors = photoTensors(files.map((f) => join(dir, f))).map((p) => p.tensor);
  const rel = relative(ROOT, dir);
  return { tensors, from: rel.startsWith('..') ? dir : rel || '.', files: files.length };
}

import { synthesizeModel } from '../synth';
import { DEFAULT_OUT, modelDir, modelIds, parse, type Command } from './command';

const usage = 'synth <id|all> [--out models/out] [--width 1] [--seed 0]   architecture-faithful model, synthetic weights';

export const synth: Command = {
  name: 'synth',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      out: { type: 'string', default: DEFAULT_OUT },
      width: { type: 'string', default: '1' },
      seed: { type: 'string', default: '0' },
    });
    const width = Number(values.width);
    const seed = Number(values.seed);
    if (!(width > 0)) throw new Error(`--width must be > 0, got ${values.width}`);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`--seed must be a uint32, got ${values.seed}`);
    for (const id of modelIds(positionals[0], usage)) {
      const r = await synthesizeModel(id, { dir: modelDir(values.out, id, 'fp32'), width, seed });
      console.log(`${id}: ${r.modelPath} (${(r.manifest.bytes / 1e6).toFixed(1)} MB, ${Math.round(r.buildMs)} ms)`);
    }
  },
};

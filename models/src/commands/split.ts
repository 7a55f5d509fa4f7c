import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_OUT, modelDir, readManifest } from '../paths';
import { MAX_STAGE_BYTES, splitOne } from '../split';
import { modelIds, parse, type Command } from './command';

const usage =
  'split <id|all> [--stages N] [--max-stage-mb 26] [--out models/out]   cut an int8 model into stages, each for its own isolate';

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

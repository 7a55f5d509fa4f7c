import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { uploadModel } from '../upload';
import { modelIds, parse, type Command } from './command';
import { DEFAULT_OUT, modelDir, type Variant } from '../paths';

const usage =
  'upload <id|all> [--local|--remote] [--precision int8|fp32] [--out models/out] [--persist-to DIR]   put model + manifest into R2 (int8 when built)';

export const upload: Command = {
  name: 'upload',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      local: { type: 'boolean', default: false },
      remote: { type: 'boolean', default: false },
      out: { type: 'string', default: DEFAULT_OUT },
      precision: { type: 'string' },
      'persist-to': { type: 'string' },
    });
    if (values.local && values.remote) throw new Error('--local or --remote, not both');
    const target = values.remote ? 'remote' : 'local';
    if (values.precision !== undefined && values.precision !== 'int8' && values.precision !== 'fp32') {
      throw new Error(`--precision must be int8 or fp32, got ${values.precision}`);
    }
    for (const id of modelIds(positionals[0], usage)) {
      // The deployable model is the int8 one; fp32 only when asked for or not quantized yet.
      const variant: Variant =
        (values.precision as Variant | undefined) ?? (existsSync(join(modelDir(values.out, id, 'int8'), 'model.onnx')) ? 'int8' : 'fp32');
      const manifest = await uploadModel(modelDir(values.out, id, variant), { target, persistTo: values['persist-to'] });
      console.log(`${id}: uploaded to ${target} R2 (${manifest.precision}, ${manifest.weights} weights, ${(manifest.bytes / 1e6).toFixed(1)} MB)`);
    }
  },
};

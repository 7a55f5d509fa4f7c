import { join } from 'node:path';
import { uploadModel } from '../upload';
import { DEFAULT_OUT, modelIds, parse, type Command } from './command';

const usage = 'upload <id|all> [--local|--remote] [--dir models/out] [--persist-to DIR]   put model + manifest into R2';

export const upload: Command = {
  name: 'upload',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      local: { type: 'boolean', default: false },
      remote: { type: 'boolean', default: false },
      dir: { type: 'string', default: DEFAULT_OUT },
      'persist-to': { type: 'string' },
    });
    if (values.local && values.remote) throw new Error('--local or --remote, not both');
    const target = values.remote ? 'remote' : 'local';
    for (const id of modelIds(positionals[0], usage)) {
      const manifest = await uploadModel(join(values.dir, id), { target, persistTo: values['persist-to'] });
      console.log(`${id}: uploaded to ${target} R2 (${manifest.precision}, ${manifest.weights} weights, ${(manifest.bytes / 1e6).toFixed(1)} MB)`);
    }
  },
};

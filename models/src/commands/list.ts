import catalog from '../../catalog.json' with { type: 'json' };
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse, type Command } from './command';
import { DEFAULT_OUT, modelDir, readManifest } from '../paths';

const usage = 'list [--out models/out]   the zoo catalog and the models built here';

export const list: Command = {
  name: 'list',
  usage,
  async run(argv) {
    const { values } = parse(argv, usage, { out: { type: 'string', default: DEFAULT_OUT } });
    console.log('id                     zoo file                      zoo MB  top1   built here');
    for (const m of catalog.models) {
      const built = [];
      for (const variant of ['fp32', 'int8'] as const) {
        const dir = modelDir(values.out, m.id, variant);
        if (!existsSync(join(dir, 'manifest.json'))) continue;
        const local = await readManifest(dir);
        built.push(`${local.precision} ${local.weights} ${(local.bytes / 1e6).toFixed(1)} MB`);
      }
      const here = built.join('; ') || '-';
      console.log(
        `${m.id.padEnd(22)} ${m.file.padEnd(29)} ${(m.bytes / 1e6).toFixed(1).padStart(6)}  ${String(m.top1 ?? '-').padEnd(6)} ${here}`,
      );
    }
  },
};

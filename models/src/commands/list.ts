import catalog from '../../catalog.json' with { type: 'json' };
import { localModels } from '../local';
import { DEFAULT_OUT, parse, type Command } from './command';

const usage = 'list [--dir models/out]   the zoo catalog and the models built here';

export const list: Command = {
  name: 'list',
  usage,
  async run(argv) {
    const { values } = parse(argv, usage, { dir: { type: 'string', default: DEFAULT_OUT } });
    const built = new Map((await localModels(values.dir)).map((m) => [m.id, m.manifest]));
    console.log('id                     zoo file                      zoo MB  top1   built here');
    for (const m of catalog.models) {
      const local = built.get(m.id);
      const here = local ? `${local.precision}, ${local.weights} weights, ${(local.bytes / 1e6).toFixed(1)} MB` : '-';
      console.log(
        `${m.id.padEnd(22)} ${m.file.padEnd(29)} ${(m.bytes / 1e6).toFixed(1).padStart(6)}  ${String(m.top1 ?? '-').padEnd(6)} ${here}`,
      );
    }
  },
};

import cliProgress from 'cli-progress';
import { evaluateModel, formatEval, type EvalResult } from '../eval';
import { modelIds, parse, type Command } from './command';
import { DEFAULT_OUT } from '../paths';

const usage =
  'eval --model <id> --images <dir> [--labels <file>] [--out models/out] [--limit N]   top-1/top-5 on labeled images, fp32 and int8';

export const evalCommand: Command = {
  name: 'eval',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      model: { type: 'string' },
      images: { type: 'string' },
      labels: { type: 'string' },
      out: { type: 'string', default: DEFAULT_OUT },
      limit: { type: 'string' },
    });
    if (positionals.length) throw new Error(`unexpected argument "${positionals[0]}"\nusage: ${usage}`);
    if (values.model === 'all') throw new Error(`--model takes one id, not all\nusage: ${usage}`);
    const [id] = modelIds(values.model, usage);
    if (!values.images) throw new Error(`--images <dir> is required\nusage: ${usage}`);
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
      throw new Error(`--limit must be a positive integer, got ${values.limit}`);
    }

    const bar = new cliProgress.SingleBar(
      { format: 'eval {bar} {value}/{total} images | {rate} img/s | ETA {eta_formatted}', hideCursor: true, etaBuffer: 100 },
      cliProgress.Presets.shades_classic,
    );
    // The rate counts from the first image, after sessions and the kernel are loaded.
    let first = 0;
    let result: EvalResult;
    try {
      result = await evaluateModel(id!, {
        images: values.images,
        labels: values.labels,
        out: values.out,
        limit,
        onProgress: (done, total) => {
          if (done === 1) {
            first = performance.now();
            bar.start(total, 0, { rate: '-' });
          }
          const seconds = (performance.now() - first) / 1000;
          bar.update(done, { rate: done > 1 ? ((done - 1) / seconds).toFixed(1) : '-' });
        },
      });
    } finally {
      bar.stop();
    }
    console.log(formatEval(result));
  },
};

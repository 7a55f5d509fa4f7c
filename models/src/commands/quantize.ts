import { DEFAULTS, type QuantFormat } from '../quantize';
import type { CalibrationMethod } from '../quantize/calibrate';
import { images, quantizeOne } from '../quantize/files';
import { DEFAULT_OUT, PHOTOS } from '../paths';
import { modelIds, parse, type Command } from './command';

const usage =
  'quantize <id|all> --calib <dir> [--eval test/fixtures/photos] [--method percentile|minmax|entropy] [--format qoperator|qdq] [--out models/out]   static int8 from fp32';

export const quantize: Command = {
  name: 'quantize',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      calib: { type: 'string' },
      eval: { type: 'string', default: PHOTOS },
      method: { type: 'string', default: DEFAULTS.method },
      format: { type: 'string', default: DEFAULTS.format },
      out: { type: 'string', default: DEFAULT_OUT },
    });
    if (!values.calib) throw new Error(`--calib <dir of images> is required\nusage: ${usage}`);
    if (!['percentile', 'minmax', 'entropy'].includes(values.method)) throw new Error(`unknown --method ${values.method}`);
    if (!['qoperator', 'qdq'].includes(values.format)) throw new Error(`unknown --format ${values.format}`);
    const calibration = await images(values.calib);
    const evaluation = await images(values.eval);
    for (const id of modelIds(positionals[0], usage)) {
      const manifest = await quantizeOne(id, {
        out: values.out,
        calibration,
        evaluation,
        method: values.method as CalibrationMethod,
        format: values.format as QuantFormat,
      });
      const f = manifest.notes?.fidelity as Record<string, number>;
      console.log(
        `${id}: ${manifest.precision}, ${(manifest.bytes / 1e6).toFixed(1)} MB; vs fp32 on ${f.images} photos: ` +
          `logit cosine mean ${f.cosineMean!.toFixed(4)} (min ${f.cosineMin!.toFixed(4)}), ` +
          `top-1 agreement ${(100 * f.top1Agreement!).toFixed(0)}%, top-5 overlap ${(100 * f.top5Overlap!).toFixed(0)}%`,
      );
    }
  },
};

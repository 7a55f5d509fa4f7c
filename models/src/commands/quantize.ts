import cliProgress from 'cli-progress';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { ModelManifest } from '../../../src/models/manifest';
import { readManifest } from '../local';
import { DEFAULTS, measureFidelity, quantizeModel, type QuantFormat } from '../quantize';
import type { CalibrationMethod } from '../quantize/calibrate';
import { photoTensors } from '../quantize/photos';
import { ROOT } from '../upload';
import { DEFAULT_OUT, modelDir, modelIds, parse, type Command } from './command';

const usage =
  'quantize <id|all> --calib <dir> [--eval test/fixtures/photos] [--method percentile|minmax|entropy] [--format qoperator|qdq] [--out models/out]   static int8 from fp32';

export const quantize: Command = {
  name: 'quantize',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      calib: { type: 'string' },
      eval: { type: 'string', default: join(ROOT, 'test/fixtures/photos') },
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

export interface QuantizeOneOptions {
  out: string;
  /** Image files for calibration and for the fidelity measurement. */
  calibration: string[];
  evaluation: string[];
  method: CalibrationMethod;
  format: QuantFormat;
  quiet?: boolean;
}

/** int8 files larger than this (ResNet-101 and -152) are served without weight pre-packing. */
export const LOW_MEMORY_ABOVE_BYTES = 32e6;

/** Quantizes `<out>/<id>/fp32` into `<out>/<id>/int8`, fidelity measured and written into the manifest. */
export async function quantizeOne(id: string, o: QuantizeOneOptions): Promise<ModelManifest> {
  const source = modelDir(o.out, id, 'fp32');
  const fp32Manifest = await readManifest(source);
  const fp32 = new Uint8Array(await readFile(join(source, 'model.onnx')));
  const spec = fp32Manifest.preprocess;
  // Exactly the Worker's inputs: its decoder and its preprocessing kernel.
  const calib = photoTensors(o.calibration).map((p) => p.tensor);
  const evalTensors = photoTensors(o.evaluation).map((p) => p.tensor);
  if (spec.resizeShorter !== 256 || spec.cropHeight !== 224) throw new Error(`${id}: quantize expects the zoo's 256/224 preprocessing`);

  const bar = o.quiet ? undefined : new cliProgress.SingleBar({ format: `${id} {stage} {bar} {value}/{total}` }, cliProgress.Presets.shades_classic);
  bar?.start(calib.length, 0, { stage: 'calibrate' });
  const result = await quantizeModel({
    input: fp32,
    calibration: calib,
    method: o.method,
    format: o.format,
    onProgress: (done, total, stage) => {
      bar?.setTotal(total);
      bar?.update(done, { stage });
    },
  });
  bar?.stop();
  const fidelity = await measureFidelity(fp32, result.model, evalTensors);

  const overlap = o.calibration.filter((f) => o.evaluation.includes(f)).length;
  const manifest: ModelManifest = {
    ...fp32Manifest,
    // Pre-packed weights cost ~20% more wasm heap; above this size that is the difference
    // between fitting an isolate or not (bench/memory-table.ts, README).
    ...(result.model.byteLength > LOW_MEMORY_ABOVE_BYTES ? { session: { disablePrepacking: true } } : {}),
    precision: result.format === 'qdq' ? 'int8-qdq' : 'int8-qoperator',
    sha256: createHash('sha256').update(result.model).digest('hex'),
    bytes: result.model.byteLength,
    source: `${fp32Manifest.source}; int8 by models/src/quantize (${result.method}, ${result.format})`,
    notes: {
      ...fp32Manifest.notes,
      quantization: { method: result.method, format: result.format, nodes: result.nodes, ...result.info },
      calibration: { images: o.calibration.map((f) => relative(ROOT, f)) },
      fidelity: {
        ...fidelity,
        against: 'the fp32 model with the same weights',
        evaluation: o.evaluation.map((f) => relative(ROOT, f)),
        // Few photos are available here; say when the numbers are not on held-out images.
        ...(overlap > 0 ? { caveat: `${overlap} of the evaluation photos were also calibration photos` } : {}),
      },
    },
  };
  const dir = modelDir(o.out, id, 'int8');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), result.model);
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** JPEG and PNG files under `dir`, sorted, recursively. */
export async function images(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile() && /\.(jpe?g|png)$/i.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  if (files.length === 0) throw new Error(`no JPEG or PNG images in ${dir}`);
  return files;
}

/**
 * Quantizing a built model folder: `<out>/<id>/fp32` into `<out>/<id>/int8` (models/src/paths.ts
 * for the layout), calibrated and measured on image files through the Worker's own decoder and
 * preprocessing kernel. The `quantize` command and the benchmark call this; the byte-level
 * quantizer is ./index.ts.
 */
import cliProgress from 'cli-progress';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { ModelManifest } from '../../../src/models/manifest';
import { sha256 } from '../hash';
import { modelDir, readManifest, ROOT } from '../paths';
import type { CalibrationMethod } from './calibrate';
import { measureFidelity, quantizeModel, type QuantFormat } from './index';
import { photoTensors } from './photos';

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
    sha256: sha256(result.model),
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

/**
 * The warm-up network the Worker runs once at isolate start-up (src/onnx/session.ts,
 * `warmUp`): a sixteenth-width int8 ResNet-50 v1, ~0.3 MB, made by the project's own generator
 * and quantizer, so it has exactly the operators (QLinearConv 1x1 and 3x3, QLinearAdd, uint8
 * MaxPool, the float head) of the models served. Running it makes V8 compile onnxruntime's
 * kernels and onnxruntime initialise itself before the first request instead of during it.
 *
 *   tsx models/src/warmup.ts [out]     (npm run build:warmup; default src/onnx/warmup.bin)
 *
 * Deterministic: the same generator seed and calibration photos give the same bytes, and the
 * file is rewritten only when they change.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { quantizeModel } from './quantize/index';
import { photoTensors } from './quantize/photos';
import { buildResNet } from './resnet';
import { PHOTOS, ROOT } from './paths';

export const WARMUP_PATH = join(ROOT, 'src/onnx/warmup.bin');
const CALIBRATION = ['chelsea.jpg', 'coffee.jpg'].map((f) => join(PHOTOS, f));

export async function buildWarmupModel(): Promise<Uint8Array> {
  const fp32 = buildResNet({ version: 'v1', depth: 50, seed: 0, width: 1 / 16, batch: 'N' }).bytes;
  const calibration = photoTensors(CALIBRATION).map((p) => p.tensor);
  return (await quantizeModel({ input: fp32, calibration, format: 'qoperator', threads: 1 })).model;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ?? WARMUP_PATH;
  const model = await buildWarmupModel();
  const same = existsSync(out) && Buffer.compare(readFileSync(out), model) === 0;
  if (!same) await writeFile(out, model);
  console.log(`${out}: ${(model.byteLength / 1e3).toFixed(0)} kB${same ? ', unchanged' : ''}`);
}

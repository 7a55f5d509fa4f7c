/**
 * `view`: the exact 224x224 8-bit crop the Worker feeds a model for an image, written as a
 * PNG (and optionally raw RGB), so that a user or a test can hold it against any reference.
 * Same code path as the Worker: planFor + prepareInput (decode plan, reduced-scale JPEG,
 * streaming, EXIF orientation) with the model's manifest spec and the Worker's limits; the
 * bytes come back from the normalized tensor exactly (one level is far above float error).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGENET_PREPROCESS, type PreprocessSpec } from '../../../src/models/manifest';
import { planFor, prepareInput } from '../../../src/pipeline/prepare';
import type { PreprocessKernel } from '../../../wasm/preprocess/index';
import { loadKernel } from '../kernel';
import { DEFAULT_OUT, modelDir, readManifest } from '../paths';
import { encodeRgbPng } from '../png';
import { parse, type Command } from './command';

const usage = 'view <image> [--model <id>] [--out crop.png] [--raw crop.rgb] [--max-decode-mb 32] [--models-out models/out]   the crop the Worker feeds the model';

export const view: Command = {
  name: 'view',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, {
      model: { type: 'string' },
      out: { type: 'string', default: 'crop.png' },
      raw: { type: 'string' },
      'max-decode-mb': { type: 'string', default: '32' },
      'models-out': { type: 'string', default: DEFAULT_OUT },
    });
    const file = positionals[0];
    if (!file) throw new Error(`which image? usage: ${usage}`);
    const spec = await specOf(values.model, values['models-out']);
    const crop = await viewCrop(new Uint8Array(readFileSync(file)), spec, Number(values['max-decode-mb']));
    writeFileSync(values.out, encodeRgbPng(crop.u8, spec.cropWidth, spec.cropHeight));
    if (values.raw) writeFileSync(values.raw, crop.u8);
    const r = crop.reduction;
    console.log(
      `${file}: ${crop.path}, decoded ${crop.width}x${crop.height}` +
        (r ? ` (1/${r.scale} of ${r.fullWidth}x${r.fullHeight} upright)` : '') +
        `, ${(crop.memoryBytes / 2 ** 20).toFixed(2)} MiB decode memory -> ${spec.cropWidth}x${spec.cropHeight} crop in ${values.out}`,
    );
  },
};

/** The model's preprocessing spec from its built manifest (int8 first, as served), else ImageNet's. */
async function specOf(id: string | undefined, out: string): Promise<PreprocessSpec> {
  if (!id) return IMAGENET_PREPROCESS;
  for (const variant of ['int8', 'fp32'] as const) {
    const dir = modelDir(out, id, variant);
    if (existsSync(join(dir, 'manifest.json'))) return (await readManifest(dir)).preprocess;
  }
  throw new Error(`model ${id} is not built in ${out} (npm run models -- synth ${id})`);
}

let kernel: PreprocessKernel | undefined;

/** The Worker's crop of `bytes` as 8-bit HWC RGB, with the decode plan's facts. */
export async function viewCrop(bytes: Uint8Array, spec: PreprocessSpec, maxDecodeMB = 32) {
  kernel ??= loadKernel();
  const limits = { maxPixels: 16_000_000, maxMemoryMB: maxDecodeMB };
  const plan = planFor(bytes, spec, limits);
  const tensor = new Float32Array(3 * spec.cropHeight * spec.cropWidth);
  await prepareInput(bytes, plan, spec, limits, kernel, tensor, 0);
  const plane = spec.cropHeight * spec.cropWidth;
  const u8 = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) u8[i * 3 + c] = Math.round((tensor[c * plane + i]! * spec.std[c]! + spec.mean[c]!) * 255);
  }
  return { u8, path: plan.path, width: plan.width, height: plan.height, reduction: plan.reduction, memoryBytes: plan.memoryBytes };
}

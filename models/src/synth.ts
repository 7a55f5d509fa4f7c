/**
 * Writes a synthetic-weight ResNet and its manifest (`npm run models -- synth <id>`):
 * `<dir>/model.onnx` and `<dir>/manifest.json` for ids resnet18v1 ... resnet152v2.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { IMAGENET_PREPROCESS, type ModelManifest } from '../../src/models/manifest';
import { buildResNet, parseResNetId, RESNET_OPSET, type ResNetBuild } from './resnet';
import { buildSensitiveResNetMeasured } from './sensitive';

export interface SynthOptions {
  /** Destination folder for model.onnx and manifest.json. */
  dir: string;
  seed?: number;
  width?: number;
  /** Batch dimension: symbolic `'N'` (default) or fixed, as some exported models have. */
  batch?: number | 'N';
  /**
   * Measure the BatchNorm statistics on these photos (preprocessed 1x3x224x224 tensors, see
   * models/src/sensitive.ts) instead of predicting them; `bnFrom` names them in the manifest.
   * Only ResNet-18/34/50 with a symbolic batch.
   */
  bnPhotos?: { tensors: Float32Array[]; from: string; files: number };
}

export interface SynthResult {
  manifest: ModelManifest;
  modelPath: string;
  manifestPath: string;
  /** Milliseconds spent generating and serializing (not writing). */
  buildMs: number;
}

/** The manifest of a synthetic model whose file is `bytes`. */
export function syntheticManifest(
  id: string,
  bytes: Uint8Array,
  info: Pick<ResNetBuild, 'inputName' | 'outputName' | 'inputShape' | 'outputShape' | 'parameters'> & {
    seed: number;
    width: number;
    /** Extra `notes` (e.g. where measured BN statistics came from). */
    notes?: Record<string, unknown>;
  },
): ModelManifest {
  const { version, depth } = parseResNetId(id);
  return {
    id,
    family: 'resnet',
    version,
    depth,
    precision: 'fp32',
    input: { name: info.inputName, shape: info.inputShape },
    output: { name: info.outputName, shape: info.outputShape },
    preprocess: IMAGENET_PREPROCESS,
    labels: 'imagenet-1k',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bytes: bytes.byteLength,
    weights: 'synthetic',
    source: `synthetic: models/src/resnet.ts seed=${info.seed} width=${info.width}`,
    notes: { seed: info.seed, width: info.width, parameters: info.parameters, opset: RESNET_OPSET, ...info.notes },
  };
}

export async function synthesizeModel(id: string, opts: SynthOptions): Promise<SynthResult> {
  const { version, depth } = parseResNetId(id);
  const seed = (opts.seed ?? 0) >>> 0;
  const width = opts.width ?? 1;
  const t0 = performance.now();
  let built: ResNetBuild;
  let notes: Record<string, unknown> | undefined;
  if (opts.bnPhotos) {
    if (depth !== 18 && depth !== 34 && depth !== 50) throw new Error(`${id}: measured BN statistics are for ResNet-18/34/50 only`);
    if ((opts.batch ?? 'N') !== 'N') throw new Error(`${id}: measured BN statistics need the symbolic batch`);
    const s = await buildSensitiveResNetMeasured(opts.bnPhotos.tensors, { depth, version, seed, width });
    built = s;
    notes = {
      bnStatistics: `measured on ${opts.bnPhotos.files} photos from ${opts.bnPhotos.from} (${s.views} augmented views), not predicted; classifier re-centred and scaled x${s.logitScale.toPrecision(4)} for a median top-1 of ${s.medianTop1.toFixed(2)} on them (models/src/sensitive.ts)`,
    };
  } else {
    built = buildResNet({ version, depth, seed, width, batch: opts.batch ?? 'N' });
  }
  const buildMs = performance.now() - t0;
  const manifest = syntheticManifest(id, built.bytes, { ...built, seed, width, ...(notes ? { notes } : {}) });

  const dir = opts.dir;
  await mkdir(dir, { recursive: true });
  const modelPath = path.join(dir, 'model.onnx');
  const manifestPath = path.join(dir, 'manifest.json');
  await writeFile(modelPath, built.bytes);
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return { manifest, modelPath, manifestPath, buildMs };
}

/**
 * Writes synthetic-weight ResNets and their manifests:
 *
 *   npx tsx models/src/synth.ts <id|all> [--out models/out] [--width 1] [--seed 0]
 *
 * producing `<out>/<id>/model.onnx` and `<out>/<id>/manifest.json` for ids resnet18v1 ...
 * resnet152v2. The logic lives in `synthesizeModel` so a later CLI can call it directly.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { IMAGENET_PREPROCESS, type ModelManifest } from '../../src/models/manifest';
import { buildResNet, parseResNetId, RESNET_IDS, RESNET_OPSET } from './resnet';

export interface SynthOptions {
  /** Parent directory; the model goes to `<outDir>/<id>/`. */
  outDir: string;
  seed?: number;
  width?: number;
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
  info: { inputName: string; outputName: string; parameters: number; seed: number; width: number },
): ModelManifest {
  const { version, depth } = parseResNetId(id);
  return {
    id,
    family: 'resnet',
    version,
    depth,
    precision: 'fp32',
    input: { name: info.inputName, shape: ['N', 3, 224, 224] },
    output: { name: info.outputName, shape: ['N', 1000] },
    preprocess: IMAGENET_PREPROCESS,
    labels: 'imagenet-1k',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bytes: bytes.byteLength,
    weights: 'synthetic',
    source: `synthetic: models/src/resnet.ts seed=${info.seed} width=${info.width}`,
    notes: { seed: info.seed, width: info.width, parameters: info.parameters, opset: RESNET_OPSET },
  };
}

export async function synthesizeModel(id: string, opts: SynthOptions): Promise<SynthResult> {
  const { version, depth } = parseResNetId(id);
  const seed = (opts.seed ?? 0) >>> 0;
  const width = opts.width ?? 1;
  const t0 = performance.now();
  const built = buildResNet({ version, depth, seed, width, batch: 'N' });
  const buildMs = performance.now() - t0;
  const manifest = syntheticManifest(id, built.bytes, { ...built, seed, width });

  const dir = path.join(opts.outDir, id);
  await mkdir(dir, { recursive: true });
  const modelPath = path.join(dir, 'model.onnx');
  const manifestPath = path.join(dir, 'manifest.json');
  await writeFile(modelPath, built.bytes);
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return { manifest, modelPath, manifestPath, buildMs };
}

export interface SynthArgs {
  ids: string[];
  outDir: string;
  seed: number;
  width: number;
}

const USAGE = 'usage: synth.ts <id|all> [--out models/out] [--width 1] [--seed 0]';

export function parseArgs(argv: readonly string[]): SynthArgs {
  let target: string | undefined;
  let outDir = 'models/out';
  let seed = 0;
  let width = 1;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--out') outDir = value();
    else if (a === '--seed') seed = Number(value());
    else if (a === '--width') width = Number(value());
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}\n${USAGE}`);
    else if (target === undefined) target = a;
    else throw new Error(`unexpected argument ${a}\n${USAGE}`);
  }
  if (target === undefined) throw new Error(USAGE);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`--seed must be an integer in [0, 2^32), got ${seed}`);
  if (!(width > 0)) throw new Error(`--width must be > 0, got ${width}`);
  const ids = target === 'all' ? [...RESNET_IDS] : [target];
  for (const id of ids) parseResNetId(id);
  return { ids, outDir, seed, width };
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  for (const id of args.ids) {
    const r = await synthesizeModel(id, args);
    const mb = (r.manifest.bytes / 1e6).toFixed(1);
    console.log(`${id}: ${r.modelPath} ${mb} MB sha256=${r.manifest.sha256.slice(0, 12)}… (${Math.round(r.buildMs)} ms)`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}

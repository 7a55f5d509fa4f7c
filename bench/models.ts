/**
 * The models the benchmark measures, built into `<workDir>/models/<id>/<fp32|int8>/` (the
 * models CLI's layout) and reused while their recipe is unchanged: fp32 from the generator
 * (seed 0, full width), int8 from that fp32 file by the project's quantizer, calibrated on
 * the fixture photos preprocessed by the Worker's own kernel.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { quantizeModel } from '../models/src/quantize/index';
import { synthesizeModel } from '../models/src/synth';
import type { ModelManifest } from '../src/models/manifest';
import type { ModelSpec } from './options';
import { modelDir, ROOT } from '../models/src/paths';
import { LOW_MEMORY_ABOVE_BYTES } from '../models/src/quantize/files';

const SEED = 0;
const WIDTH = 1;

export interface BuiltModel {
  spec: ModelSpec;
  dir: string;
  manifest: ModelManifest;
  /** True when taken from the cache rather than built in this run. */
  cached: boolean;
  buildMs: number;
}

export interface ModelFailure {
  spec: ModelSpec;
  stage: 'synthesize' | 'quantize' | 'cold burst';
  error: string;
}

/**
 * Identifies everything an int8 file depends on: its fp32 input, the calibration tensors and
 * the quantizer's source (being finished while this benchmark is written, so a change there
 * must rebuild rather than measure a stale file).
 */
function int8Recipe(fp32: ModelManifest, calibration: readonly Float32Array[]): string {
  const h = createHash('sha256');
  h.update(`fp32 ${fp32.sha256}\nno pre-packing above ${LOW_MEMORY_ABOVE_BYTES}\n`);
  for (const t of calibration) h.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
  const quantizeDir = join(ROOT, 'models/src/quantize');
  for (const f of readdirSync(quantizeDir).filter((f) => f.endsWith('.ts')).sort()) {
    h.update(`${f}\n`).update(readFileSync(join(quantizeDir, f)));
  }
  return h.digest('hex');
}

async function readManifest(dir: string): Promise<ModelManifest | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
  } catch {
    return undefined;
  }
}

async function ensureFp32(out: string, id: string): Promise<{ dir: string; manifest: ModelManifest; cached: boolean; buildMs: number }> {
  const dir = modelDir(out, id, 'fp32');
  const have = await readManifest(dir);
  if (have && have.source.endsWith(`seed=${SEED} width=${WIDTH}`)) return { dir, manifest: have, cached: true, buildMs: 0 };
  const t0 = performance.now();
  const { manifest } = await synthesizeModel(id, { dir, seed: SEED, width: WIDTH });
  return { dir, manifest, cached: false, buildMs: performance.now() - t0 };
}

async function ensureInt8(
  out: string,
  id: string,
  fp32: { dir: string; manifest: ModelManifest },
  calibration: readonly Float32Array[],
): Promise<{ dir: string; manifest: ModelManifest; cached: boolean; buildMs: number }> {
  const dir = modelDir(out, id, 'int8');
  const recipe = int8Recipe(fp32.manifest, calibration);
  const have = await readManifest(dir);
  if (have && have.notes?.['benchRecipe'] === recipe) return { dir, manifest: have, cached: true, buildMs: 0 };
  const t0 = performance.now();
  const input = new Uint8Array(await readFile(join(fp32.dir, 'model.onnx')));
  const q = await quantizeModel({ input, calibration: [...calibration] });
  const manifest: ModelManifest = {
    ...fp32.manifest,
    // The models CLI's policy (models/src/commands/quantize.ts), so the Worker runs these as it would run its own.
    ...(q.model.byteLength > LOW_MEMORY_ABOVE_BYTES ? { session: { disablePrepacking: true } } : {}),
    precision: q.format === 'qdq' ? 'int8-qdq' : 'int8-qoperator',
    sha256: createHash('sha256').update(q.model).digest('hex'),
    bytes: q.model.byteLength,
    source: `${fp32.manifest.source}, quantized: int8 ${q.format}, ${q.method} calibration`,
    notes: { ...fp32.manifest.notes, quantize: q.info, nodes: q.nodes, benchRecipe: recipe },
  };
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), q.model);
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { dir, manifest, cached: false, buildMs: performance.now() - t0 };
}

/**
 * Builds (or reuses) every requested model. A model that fails to build is reported, not
 * fatal: the quantizer is work in progress and the rest of the report is still worth having.
 */
export async function ensureModels(
  out: string,
  specs: readonly ModelSpec[],
  calibration: () => Float32Array[],
  progress: (line: string) => void,
): Promise<{ built: BuiltModel[]; failures: ModelFailure[] }> {
  const built: BuiltModel[] = [];
  const failures: ModelFailure[] = [];
  const ids = [...new Set(specs.map((s) => s.id))];
  let tensors: Float32Array[] | undefined;
  for (const id of ids) {
    let fp32;
    try {
      fp32 = await ensureFp32(out, id);
      progress(`model ${id} fp32: ${fp32.cached ? 'cached' : `built in ${(fp32.buildMs / 1000).toFixed(1)} s`}`);
    } catch (err) {
      for (const spec of specs.filter((s) => s.id === id)) failures.push({ spec, stage: 'synthesize', error: message(err) });
      continue;
    }
    for (const spec of specs.filter((s) => s.id === id)) {
      if (spec.variant === 'fp32') {
        built.push({ spec, ...fp32 });
        continue;
      }
      try {
        tensors ??= calibration();
        const int8 = await ensureInt8(out, id, fp32, tensors);
        progress(`model ${id} int8: ${int8.cached ? 'cached' : `quantized in ${(int8.buildMs / 1000).toFixed(1)} s`}`);
        built.push({ spec, ...int8 });
      } catch (err) {
        progress(`model ${id} int8: quantizer failed: ${message(err)}`);
        failures.push({ spec, stage: 'quantize', error: message(err) });
      }
    }
  }
  // Keep the order the user asked for.
  built.sort((a, b) => specs.indexOf(a.spec) - specs.indexOf(b.spec));
  return { built, failures };
}

export const message = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);

export const label = (spec: ModelSpec): string => `${spec.id} ${spec.variant}`;
/** The id the model is served under in the benchmark's own local R2: both variants side by side. */
export const servedId = (spec: ModelSpec): string => `${spec.id}-${spec.variant}`;

/**
 * onnxruntime-web's heap for one session (a whole model or one stage of a split model: what
 * one isolate holds), in a fresh Node process, with the manifest's session settings.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stageFile, type ModelManifest, type TensorSpec } from '../src/models/manifest';
import { runNodeChild } from './node-runtimes';

export interface SessionHeap {
  wasmHeapAfterCreate: number;
  wasmHeapPeak: number;
  /** JS heap growth around creation and first run (after gc). */
  jsHeapDelta: number;
}

/** A zero tensor for `spec` with batch 1 in `scratch`, written once per shape. */
async function zeros(scratch: string, spec: TensorSpec): Promise<{ path: string; dims: number[] }> {
  const dims = spec.shape.map((d, i) => (i === 0 ? 1 : Number(d)));
  const count = dims.reduce((a, b) => a * b, 1);
  const path = join(scratch, `zeros-${dims.join('x')}.${spec.type === 'uint8' ? 'u8' : 'f32'}`);
  await mkdir(scratch, { recursive: true });
  await writeFile(path, new Uint8Array(count * (spec.type === 'uint8' ? 1 : 4)));
  return { path, dims };
}

export async function sessionHeap(scratch: string, file: string, input: TensorSpec, session: ModelManifest['session']): Promise<SessionHeap> {
  const { path, dims } = await zeros(scratch, input);
  const run = await runNodeChild('ort-web', file, path, 0, 1, { disablePrepacking: session?.disablePrepacking, inputDims: dims });
  const m = run.memory!;
  return { wasmHeapAfterCreate: m.wasmHeapAfterCreate, wasmHeapPeak: m.wasmHeapPeak, jsHeapDelta: Math.max(0, m.jsHeapDeltaAfterCreate, m.jsHeapDeltaAfterRun) };
}

/** The sessions a model is served as: the whole file, or each stage of a split one. */
export function servedParts(dir: string, manifest: ModelManifest): Array<{ file: string; input: TensorSpec; session: ModelManifest['session']; stage?: number; bytes: number }> {
  if (manifest.stages) {
    return manifest.stages.map((s, k) => ({ file: join(dir, stageFile(k)), input: s.input, session: s.session, stage: k, bytes: s.bytes }));
  }
  return [{ file: join(dir, 'model.onnx'), input: { name: manifest.input.name, type: 'float32', shape: manifest.input.shape }, session: manifest.session, bytes: manifest.bytes }];
}

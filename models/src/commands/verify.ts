import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { stageFile } from '../../../src/models/manifest';
import { runChain } from '../split';
import { modelIds, parse, type Command } from './command';
import { DEFAULT_OUT, modelDir, readManifest } from '../paths';
import { sha256 } from '../hash';

const usage = 'verify <id|all> [--out models/out]   sha256, loads in onnxruntime-node, input/output shapes (fp32 and int8)';

export const verify: Command = {
  name: 'verify',
  usage,
  async run(argv) {
    const { values, positionals } = parse(argv, usage, { out: { type: 'string', default: DEFAULT_OUT } });
    let failed = 0;
    let checked = 0;
    for (const id of modelIds(positionals[0], usage)) {
      for (const variant of ['fp32', 'int8'] as const) {
        const dir = modelDir(values.out, id, variant);
        if (!existsSync(join(dir, 'manifest.json'))) continue;
        checked++;
        const problems = await verifyModel(dir);
        console.log(problems.length ? `${id} ${variant}: FAILED\n  ${problems.join('\n  ')}` : `${id} ${variant}: ok`);
        if (problems.length) failed++;
      }
    }
    if (checked === 0) throw new Error('no built model to verify (run synth, fetch or quantize first)');
    if (failed) throw new Error(`${failed} model(s) failed verification`);
  },
};

/** Everything that would make the Worker refuse or misuse the model; empty when it is fine. */
export async function verifyModel(dir: string): Promise<string[]> {
  const problems: string[] = [];
  const manifest = await readManifest(dir);
  const bytes = new Uint8Array(await readFile(join(dir, 'model.onnx')));
  if (bytes.byteLength !== manifest.bytes) problems.push(`size ${bytes.byteLength} != manifest ${manifest.bytes}`);
  if (sha256(bytes) !== manifest.sha256) problems.push('sha256 does not match the manifest');
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  } catch (err) {
    return [...problems, `onnxruntime-node cannot load it: ${err instanceof Error ? err.message : String(err)}`];
  }
  try {
    const { input, output, preprocess } = manifest;
    if (!session.inputNames.includes(input.name)) problems.push(`no input "${input.name}" (has ${session.inputNames.join(', ')})`);
    if (!session.outputNames.includes(output.name)) problems.push(`no output "${output.name}" (has ${session.outputNames.join(', ')})`);
    if (problems.length) return problems;
    // Two images when the batch is symbolic (checks that batching works), else the fixed size.
    const batch = typeof input.shape[0] === 'number' ? input.shape[0] : 2;
    const dims = [batch, 3, preprocess.cropHeight, preprocess.cropWidth];
    const data = Float32Array.from({ length: dims.reduce((a, b) => a * b) }, (_, i) => Math.sin(i) * 2);
    const result = await session.run({ [input.name]: new ort.Tensor('float32', data, dims) });
    const out = result[output.name]!;
    if (out.dims.join() !== `${batch},${output.shape[1]}`) problems.push(`output shape [${out.dims.join(', ')}], expected [${batch}, ${output.shape[1]}]`);
    if (!(out.data as Float32Array).every(Number.isFinite)) problems.push('output has non-finite values');
    if (manifest.stages) problems.push(...(await verifyStages(dir, data, dims, out.data as Float32Array)));
  } finally {
    await session.release();
  }
  return problems;
}

/** A split model: every stage file matches the manifest, and the chained stages give the whole model's output. */
async function verifyStages(dir: string, data: Float32Array, dims: number[], whole: Float32Array): Promise<string[]> {
  const { stages = [] } = await readManifest(dir);
  const problems: string[] = [];
  const models: Uint8Array[] = [];
  for (const [k, stage] of stages.entries()) {
    const file = join(dir, stageFile(k));
    if (!existsSync(file)) {
      problems.push(`${stageFile(k)} is missing`);
      continue;
    }
    const bytes = new Uint8Array(await readFile(file));
    if (bytes.byteLength !== stage.bytes || sha256(bytes) !== stage.sha256) problems.push(`${stageFile(k)} does not match the manifest`);
    if (k > 0 && stage.input.name !== stages[k - 1]!.output.name) problems.push(`stage ${k} reads ${stage.input.name}, stage ${k - 1} gives ${stages[k - 1]!.output.name}`);
    models.push(bytes);
  }
  if (problems.length) return problems;
  try {
    const chained = await runChain(models, { data, dims });
    const diff = chained.reduce((m, v, i) => Math.max(m, Math.abs(v - whole[i]!)), 0);
    if (!(diff === 0)) problems.push(`the ${stages.length} chained stages differ from the whole model by ${diff}`);
  } catch (err) {
    problems.push(`the stages do not run as a chain: ${err instanceof Error ? err.message : String(err)}`);
  }
  return problems;
}

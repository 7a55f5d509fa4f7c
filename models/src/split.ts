/**
 * Cuts a model into consecutive stages, each small enough for its own isolate (128 MB: an int8
 * ResNet-101 or -152 does not fit one). A cut is only made where the graph narrows to a single
 * live tensor (in a ResNet: between two residual blocks), so a stage hands exactly one tensor
 * to the next and running the stages one after another computes what the whole model does.
 *
 * The element types and shapes of the cut tensors are not in the graph (the quantizer writes no
 * value_info); onnxruntime-node reports them when the tensors are added as extra outputs, so
 * they are probed with one run of the whole model rather than re-derived op by op here.
 *
 * `splitModel` cuts bytes; `splitOne` applies it to a built int8 model folder (stage files and
 * manifest), for the `split` command, the benchmark and the tests.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { stageFile, type ModelManifest, type StageManifest, type TensorSpec, type TensorType } from '../../src/models/manifest';
import { sha256 } from './hash';
import { readManifest } from './paths';
import { LOW_MEMORY_ABOVE_BYTES } from './quantize/files';
import { DataType, decodeModel, encodeModel, graphOf, onnx, toNumber, type ModelProto, type TensorProto, type ValueInfoProto } from './onnx';

export interface Cut {
  /** The one tensor alive across the cut. */
  tensor: string;
  /** Index of the first node after the cut. */
  position: number;
  /** Initializer bytes read by the nodes before the cut. */
  bytesBefore: number;
}

export interface Stage {
  model: Uint8Array;
  input: TensorSpec;
  output: TensorSpec;
  nodes: number;
  /** Initializer bytes in this stage (what its session's heap mostly holds). */
  weightBytes: number;
}

export interface SplitResult {
  stages: Stage[];
  /** Largest difference between the chained stages' output and the whole model's, on a probe input. */
  maxAbsDiff: number;
}

/** Every place where the graph can be cut, in node order, and the model's total initializer bytes. */
export function findCuts(model: ModelProto): { cuts: Cut[]; totalBytes: number } {
  const g = graphOf(model);
  const initializers = new Map(g.initializer.map((t) => [t.name, t]));
  const n = g.node.length;
  // Producer index (-1: graph input) and last reader (n: graph output) of every activation.
  const produced = new Map<string, number>(g.input.filter((v) => !initializers.has(v.name)).map((v) => [v.name, -1]));
  const lastUse = new Map<string, number>();
  const firstUseBytes = new Array<number>(n).fill(0);
  const seen = new Set<string>();
  g.node.forEach((node, i) => {
    for (const name of node.input) {
      if (!name) continue;
      const init = initializers.get(name);
      if (init) {
        if (!seen.has(name)) firstUseBytes[i]! += tensorBytes(init);
        seen.add(name);
      } else {
        if (!produced.has(name)) throw new Error(`split: node ${node.name || i} reads ${name} before it is produced (graph not in topological order)`);
        lastUse.set(name, i);
      }
    }
    for (const name of node.output) if (name) produced.set(name, i);
  });
  for (const v of g.output) lastUse.set(v.name, n);

  const cuts: Cut[] = [];
  let bytesBefore = firstUseBytes[0] ?? 0;
  for (let position = 1; position < n; position++) {
    const live = [...produced].filter(([name, p]) => p < position && (lastUse.get(name) ?? -1) >= position);
    // A graph input still needed later is live too, so "exactly one, produced by a node" is the test.
    if (live.length === 1 && live[0]![1] >= 0) cuts.push({ tensor: live[0]![0], position, bytesBefore });
    bytesBefore += firstUseBytes[position]!;
  }
  return { cuts, totalBytes: bytesBefore };
}

/** The `stages - 1` cuts whose stages hold the most even shares of the weights. */
export function chooseCuts(cuts: readonly Cut[], totalBytes: number, stages: number): Cut[] {
  if (!Number.isInteger(stages) || stages < 1) throw new Error(`split: stages must be a positive integer, got ${stages}`);
  if (stages - 1 > cuts.length) throw new Error(`split: the graph has ${cuts.length} single-tensor cut points, too few for ${stages} stages`);
  const chosen: Cut[] = [];
  let from = 0;
  for (let k = 1; k < stages; k++) {
    const target = (totalBytes * k) / stages;
    // Leave at least one cut for each stage still to come.
    const options = cuts.slice(from, cuts.length - (stages - 1 - k));
    let best = 0;
    options.forEach((c, i) => {
      if (Math.abs(c.bytesBefore - target) < Math.abs(options[best]!.bytesBefore - target)) best = i;
    });
    chosen.push(options[best]!);
    from += best + 1;
  }
  return chosen;
}

/** Splits model bytes into `stages` stages (1 gives the whole model back as one stage). */
export async function splitModel(bytes: Uint8Array, stages: number): Promise<SplitResult> {
  const model = decodeModel(bytes);
  const g = graphOf(model);
  const initializers = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((v) => !initializers.has(v.name));
  if (inputs.length !== 1 || g.output.length !== 1) throw new Error('split: expects a model with one input and one output');
  const { cuts, totalBytes } = findCuts(model);
  const chosen = chooseCuts(cuts, totalBytes, stages);
  const input = inputs[0]!;
  const output = g.output[0]!;
  const batch = dimsOf(input)[0] ?? 'N';
  const probe = await probeTensors(bytes, input, batch, chosen.map((c) => c.tensor));

  const bounds = [0, ...chosen.map((c) => c.position), g.node.length];
  const boundaryValues: ValueInfoProto[] = [input, ...chosen.map((c) => probe.valueInfo.get(c.tensor)!), output];
  const result: Stage[] = [];
  for (let k = 0; k < stages; k++) {
    const stage = buildStage(model, bounds[k]!, bounds[k + 1]!, boundaryValues[k]!, boundaryValues[k + 1]!, `${k + 1}/${stages}`);
    result.push({
      ...stage,
      input: specOf(boundaryValues[k]!),
      output: specOf(boundaryValues[k + 1]!),
      nodes: bounds[k + 1]! - bounds[k]!,
    });
  }

  const chained = await runChain(result.map((s) => s.model), probe.input);
  const maxAbsDiff = chained.reduce((m, v, i) => Math.max(m, Math.abs(v - probe.output[i]!)), 0);
  return { stages: result, maxAbsDiff };
}

/** The nodes [from, to) as a model of their own, with the initializers they read. */
function buildStage(model: ModelProto, from: number, to: number, input: ValueInfoProto, output: ValueInfoProto, label: string) {
  const g = graphOf(model);
  const node = g.node.slice(from, to);
  const reads = new Set(node.flatMap((n) => n.input));
  const initializer = g.initializer.filter((t) => reads.has(t.name));
  const graph = onnx.GraphProto.create({
    name: `${g.name} stage ${label}`,
    node,
    initializer,
    input: [input],
    output: [output],
    valueInfo: g.valueInfo.filter((v) => reads.has(v.name)),
  });
  const stage = onnx.ModelProto.create({
    irVersion: model.irVersion,
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    docString: `stage ${label} of ${g.name}, cut by edge-resnet models/src/split.ts`,
    opsetImport: model.opsetImport,
    metadataProps: [...model.metadataProps, { key: 'edge-resnet:stage', value: label }],
    graph,
  });
  return { model: encodeModel(stage), weightBytes: initializer.reduce((a, t) => a + tensorBytes(t), 0) };
}

/**
 * Runs the whole model once on a deterministic batch of two with the cut tensors as extra
 * outputs: their types and shapes become the stages' value_info, and the tensors themselves
 * the reference for the chained run.
 */
async function probeTensors(bytes: Uint8Array, input: ValueInfoProto, batch: number | string, tensors: string[]) {
  const probing = decodeModel(bytes);
  const g = graphOf(probing);
  g.output = [...g.output, ...tensors.map((name) => onnx.ValueInfoProto.create({ name }))];
  const session = await ort.InferenceSession.create(encodeModel(probing), { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled' });
  try {
    const dims = dimsOf(input).map((d, i) => (i === 0 ? (typeof batch === 'number' ? batch : 2) : d));
    if (dims.some((d) => typeof d !== 'number')) throw new Error(`split: input ${input.name} has symbolic dims beyond the batch`);
    const size = (dims as number[]).reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37) * 1.5);
    const out = await session.run({ [input.name]: new ort.Tensor('float32', data, dims as number[]) });
    const valueInfo = new Map<string, ValueInfoProto>();
    for (const name of tensors) {
      const t = out[name]!;
      const type = TENSOR_TYPES[t.type];
      if (type === undefined) throw new Error(`split: cut tensor ${name} is ${t.type}; stages hand over float32 or uint8 only`);
      valueInfo.set(name, makeValueInfo(name, type, [batch, ...t.dims.slice(1)]));
    }
    return { valueInfo, input: { name: input.name, data, dims: dims as number[] }, output: out[g.output[0]!.name]!.data as Float32Array };
  } finally {
    await session.release();
  }
}

/** Runs stage models one after another in onnxruntime-node, as the Worker chains them. */
export async function runChain(models: readonly Uint8Array[], input: { data: Float32Array; dims: number[] }): Promise<Float32Array> {
  let tensor: ort.Tensor = new ort.Tensor('float32', input.data, input.dims);
  for (const model of models) {
    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    try {
      const out = await session.run({ [session.inputNames[0]!]: tensor });
      tensor = out[session.outputNames[0]!]!;
    } finally {
      await session.release();
    }
  }
  return tensor.data as Float32Array;
}

const TENSOR_TYPES: Record<string, number> = { float32: DataType.FLOAT, uint8: DataType.UINT8 };
const TYPE_NAMES: Record<number, TensorType> = { [DataType.FLOAT]: 'float32', [DataType.UINT8]: 'uint8' };

function makeValueInfo(name: string, elemType: number, shape: ReadonlyArray<number | string>): ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType, shape: { dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
}

function dimsOf(v: ValueInfoProto): Array<number | string> {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : toNumber(d.dimValue)));
}

function specOf(v: ValueInfoProto): TensorSpec {
  const type = TYPE_NAMES[v.type?.tensorType?.elemType ?? -1];
  if (!type) throw new Error(`split: ${v.name} is neither float32 nor uint8`);
  return { name: v.name, type, shape: dimsOf(v) };
}

const ELEMENT_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 10: 2, 11: 8 };

function tensorBytes(t: TensorProto): number {
  if (t.rawData && t.rawData.length > 0) return t.rawData.length;
  const count = t.dims.reduce<number>((a, d) => a * toNumber(d), 1);
  return count * (ELEMENT_BYTES[t.dataType] ?? 4);
}

/**
 * The largest model measured to serve from one isolate with room for the request path:
 * ResNet-50 int8, 25.8 MB of weights, ~84 MiB of wasm heap (README, Models). Larger int8 models
 * are split into stages no bigger than this.
 */
export const MAX_STAGE_BYTES = 26e6;

/**
 * Writes `stage-<k>.onnx` beside model.onnx and lists them in the manifest; one stage means
 * "serve whole", which removes an earlier split. The chained stages are checked against the
 * whole model before anything is written.
 */
export async function splitOne(dir: string, stages: number): Promise<ModelManifest> {
  const manifest = await readManifest(dir);
  for (const [k] of (manifest.stages ?? []).entries()) await rm(join(dir, stageFile(k)), { force: true });
  const { stages: _, notes: { split: __, ...notes } = {}, ...rest } = manifest;
  let updated: ModelManifest = { ...rest, notes };
  if (stages > 1) {
    const result = await splitModel(new Uint8Array(await readFile(join(dir, 'model.onnx'))), stages);
    // Identical kernels on identical inputs: anything but an exact match is a broken cut.
    if (result.maxAbsDiff !== 0) throw new Error(`${manifest.id}: chained stages differ from the whole model by ${result.maxAbsDiff}`);
    const entries: StageManifest[] = [];
    for (const [k, stage] of result.stages.entries()) {
      await writeFile(join(dir, stageFile(k)), stage.model);
      entries.push({
        sha256: sha256(stage.model),
        bytes: stage.model.byteLength,
        input: stage.input,
        output: stage.output,
        // Each stage is small enough to keep onnxruntime's faster pre-packed weights.
        ...(stage.model.byteLength > LOW_MEMORY_ABOVE_BYTES ? { session: { disablePrepacking: true } } : {}),
      });
    }
    updated = { ...updated, stages: entries, notes: { ...notes, split: { stages, maxAbsDiff: result.maxAbsDiff, nodes: result.stages.map((s) => s.nodes) } } };
  }
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(updated, null, 2)}\n`);
  return updated;
}

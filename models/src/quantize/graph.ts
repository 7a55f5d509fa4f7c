/**
 * Float-graph preparation for the quantizer: normalisation of zoo exports (opset 7..13) to one
 * opset-13 graph, BatchNormalization folding, and the small graph utilities the planner and
 * emitters share.
 *
 * Everything works on onnx-proto messages in place. Initializer values are read with
 * `tensorToFloat32` (a copy), and every tensor this module writes owns fresh memory, so the
 * caller's model bytes are never mutated.
 */
import {
  DataType,
  floatTensor,
  getAttribute,
  onnx,
  tensorToFloat32,
  toNumber,
  type GraphProto,
  type ModelProto,
  type ValueInfoProto,
  type NodeProto,
  type TensorProto,
} from '../onnx';

/**
 * A graph whose nested messages are the onnx-proto classes (what `decodeModel` and this
 * folder's builders produce), so fields are non-null arrays and strings. Repeated fields of a
 * decoded message may be a shared frozen empty array: assign new arrays, never push.
 */
export interface QGraph extends GraphProto {
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
}

export function graphOf(model: ModelProto): QGraph {
  const g = model.graph;
  if (!(g instanceof onnx.GraphProto)) throw new Error('quantize: model has no graph');
  return g as QGraph;
}

/** The opset of every emitted model: per-axis Quantize/DequantizeLinear need 13. */
export const TARGET_OPSET = 13;
export const MS_DOMAIN = 'com.microsoft';

/**
 * Ops whose semantics do not change between opset 7 and 13 for the attribute values the zoo's
 * ResNets use (BatchNormalization is handled specially: its `spatial` attribute went away).
 * An opset < 13 model with any other op is refused rather than silently reinterpreted.
 */
const OPSET_STABLE_7_TO_13 = new Set([
  'Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool',
  'Add', 'Sum', 'Mul', 'Sub', 'Div', 'Flatten', 'Reshape', 'Gemm', 'MatMul', 'Concat', 'Transpose',
  'Identity', 'Dropout', 'Softmax', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Neg', 'Abs',
]);

/** A graph with lookup tables; rebuild with `indexGraph` after structural edits. */
export interface GraphIndex {
  nodes: NodeProto[];
  initializers: Map<string, TensorProto>;
  /** Tensor name -> node producing it. */
  producer: Map<string, NodeProto>;
  /** Tensor name -> nodes reading it (a node reading twice appears twice). */
  consumers: Map<string, NodeProto[]>;
  inputs: Set<string>;
  outputs: Set<string>;
}

export function indexGraph(model: ModelProto): GraphIndex {
  const g = graphOf(model);
  const initializers = new Map<string, TensorProto>();
  for (const t of g.initializer) initializers.set(t.name, t);
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of g.node) {
    for (const o of n.output) if (o) producer.set(o, n);
    for (const i of n.input) {
      if (!i) continue;
      const list = consumers.get(i);
      if (list) list.push(n);
      else consumers.set(i, [n]);
    }
  }
  return {
    nodes: g.node,
    initializers,
    producer,
    consumers,
    inputs: new Set(g.input.map((v) => v.name)),
    outputs: new Set(g.output.map((v) => v.name)),
  };
}

export const consumersOf = (gi: GraphIndex, name: string): NodeProto[] => gi.consumers.get(name) ?? [];

/** The single consumer of `name`, if it has exactly one and is not a graph output. */
export function soleConsumer(gi: GraphIndex, name: string): NodeProto | undefined {
  const c = consumersOf(gi, name);
  return c.length === 1 && !gi.outputs.has(name) ? c[0] : undefined;
}

export function attrInt(node: NodeProto, name: string, dflt: number): number {
  const a = getAttribute(node, name);
  return a ? toNumber(a.i) : dflt;
}

export function attrFloat(node: NodeProto, name: string, dflt: number): number {
  const a = getAttribute(node, name);
  return a ? (a.f ?? dflt) : dflt;
}

export const dims = (t: TensorProto): number[] => t.dims.map((d) => toNumber(d));

/** Opset of the default domain. */
export function defaultOpset(model: ModelProto): number {
  const o = model.opsetImport.find((x) => !x.domain || x.domain === 'ai.onnx');
  return o ? toNumber(o.version) : 0;
}

/**
 * Brings a zoo export to the form the quantizer works on: opset 13 default domain, graph inputs
 * without initializers (IR < 4 lists every weight as an input, which also keeps ORT from
 * constant-folding them), no Dropout/Identity, BatchNormalization without `spatial`.
 */
export function normalizeModel(model: ModelProto): void {
  const opset = defaultOpset(model);
  if (opset < 7 || opset > TARGET_OPSET) {
    throw new Error(`quantize: model opset ${opset} is outside the supported 7..${TARGET_OPSET}`);
  }
  const g = graphOf(model);
  const foreign = model.opsetImport.filter((x) => x.domain && x.domain !== 'ai.onnx');
  if (foreign.length > 0) throw new Error(`quantize: custom domains are not supported (${foreign.map((x) => x.domain).join(', ')})`);
  for (const n of g.node) {
    if (n.domain && n.domain !== 'ai.onnx') throw new Error(`quantize: node ${n.name} is in domain ${n.domain}`);
    if (opset < TARGET_OPSET && !OPSET_STABLE_7_TO_13.has(n.opType)) {
      throw new Error(`quantize: ${n.opType} (node ${n.name}) cannot be carried from opset ${opset} to ${TARGET_OPSET} safely`);
    }
    if (n.opType === 'BatchNormalization') {
      if (attrInt(n, 'spatial', 1) !== 1) throw new Error(`quantize: BatchNormalization ${n.name} has spatial=0`);
      n.attribute = n.attribute.filter((a) => a.name !== 'spatial' && a.name !== 'is_test');
      // Training-mode outputs (running mean/var, saved stats) are never read by an inference graph.
      n.output = n.output.slice(0, 1);
    }
  }
  const initNames = new Set(g.initializer.map((t) => t.name));
  g.input = g.input.filter((v) => !initNames.has(v.name));

  // Dropout (inference: identity) and Identity: rewire readers to the source tensor.
  const graphOutputs = new Set(g.output.map((v) => v.name));
  const rename = new Map<string, string>();
  const resolve = (name: string): string => {
    let n = name;
    for (let r = rename.get(n); r !== undefined; r = rename.get(n)) n = r;
    return n;
  };
  const kept: NodeProto[] = [];
  for (const n of g.node) {
    n.input = n.input.map((i) => (i ? resolve(i) : i));
    const passthrough = n.opType === 'Identity' || n.opType === 'Dropout';
    const out = n.output[0];
    if (passthrough && out && !graphOutputs.has(out)) {
      if (n.output.slice(1).some((o) => o)) {
        // A Dropout mask output read by something: keep the node rather than guess.
        const readers = g.node.some((m) => m.input.some((i) => n.output.slice(1).includes(i)));
        if (readers) {
          kept.push(n);
          continue;
        }
      }
      rename.set(out, n.input[0] ?? '');
      continue;
    }
    kept.push(n);
  }
  g.node = kept;
  model.opsetImport = [onnx.OperatorSetIdProto.create({ domain: '', version: TARGET_OPSET })];
  if (toNumber(model.irVersion) < 7) model.irVersion = 7;
  // Stale shapes of intermediate tensors are not needed and could contradict later edits.
  g.valueInfo = [];
}

/** BatchNormalization as y = scale * x + shift, per channel (float64 for the folding arithmetic). */
export interface Affine {
  scale: Float64Array;
  shift: Float64Array;
}

export function bnAffine(gi: GraphIndex, bn: NodeProto): Affine {
  const get = (i: number): Float32Array => {
    const name = bn.input[i] ?? '';
    const t = gi.initializers.get(name);
    if (!t) throw new Error(`quantize: BatchNormalization ${bn.name} input ${i} (${name}) is not an initializer`);
    return tensorToFloat32(t);
  };
  const gamma = get(1);
  const beta = get(2);
  const mean = get(3);
  const variance = get(4);
  const eps = attrFloat(bn, 'epsilon', 1e-5);
  const c = gamma.length;
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    // float32 rounding of eps as ORT's kernel sees it keeps folded outputs within an ulp or two.
    const s = gamma[i]! / Math.sqrt(variance[i]! + Math.fround(eps));
    scale[i] = s;
    shift[i] = beta[i]! - mean[i]! * s;
  }
  return { scale, shift };
}

/**
 * Names for new tensors that collide with nothing in the model: `base`, else `base_1`, ...
 * Deterministic (no global counter), so the same input always gives the same output bytes.
 */
export function namer(model: ModelProto): (base: string) => string {
  const g = graphOf(model);
  const taken = new Set<string>();
  for (const t of g.initializer) taken.add(t.name);
  for (const v of [...g.input, ...g.output]) taken.add(v.name);
  for (const n of g.node) for (const x of [n.name, ...n.input, ...n.output]) taken.add(x);
  return (base: string): string => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
}

export interface FoldReport {
  /** Conv -> BN pairs folded into the conv. */
  folded: number;
  /** BNs left in the graph (v2 pre-activations, the data BN, BN after a residual Add). */
  remaining: number;
}

/**
 * Folds every BatchNormalization whose input is a Conv output read by nothing else into that
 * Conv: W' = W * s[m], b' = (b - mean) * s + beta. Exact up to float32 rounding.
 */
export function foldBatchNorms(model: ModelProto): FoldReport {
  const gi = indexGraph(model);
  const g = graphOf(model);
  const removed = new Set<NodeProto>();
  const replaced = new Map<string, TensorProto>();
  const added: TensorProto[] = [];
  const fresh = namer(model);
  let folded = 0;
  let remaining = 0;
  for (const bn of g.node) {
    if (bn.opType !== 'BatchNormalization') continue;
    const x = bn.input[0] ?? '';
    const conv = gi.producer.get(x);
    const wName = conv?.input[1] ?? '';
    const wT = gi.initializers.get(wName);
    if (!conv || conv.opType !== 'Conv' || soleConsumer(gi, x) !== bn || !wT || removed.has(conv) || replaced.has(wName)) {
      remaining++;
      continue;
    }
    // A weight shared by several convs cannot take one conv's BN.
    if (consumersOf(gi, wName).length !== 1) {
      remaining++;
      continue;
    }
    const { scale, shift } = bnAffine(gi, bn);
    const w = tensorToFloat32(wT);
    const wd = dims(wT);
    const m = wd[0]!;
    if (scale.length !== m) throw new Error(`quantize: BN ${bn.name} has ${scale.length} channels, conv ${conv.name} ${m}`);
    const per = w.length / m;
    for (let o = 0; o < m; o++) {
      const s = scale[o]!;
      for (let k = o * per; k < (o + 1) * per; k++) w[k] = w[k]! * s;
    }
    const bName = conv.input[2];
    const b0 = bName ? gi.initializers.get(bName) : undefined;
    if (bName && !b0) throw new Error(`quantize: conv ${conv.name} bias ${bName} is not an initializer`);
    const b0v = b0 ? tensorToFloat32(b0) : new Float32Array(m);
    const b = new Float32Array(m);
    for (let o = 0; o < m; o++) b[o] = b0v[o]! * scale[o]! + shift[o]!;
    const newW = floatTensor(fresh(`${wName}_bnfold`), wd, w);
    const newB = floatTensor(fresh(`${bName || `${conv.name}_bias`}_bnfold`), [m], b);
    replaced.set(wName, newW);
    added.push(newW, newB);
    conv.input = [conv.input[0] ?? '', newW.name, newB.name];
    conv.output = [bn.output[0] ?? ''];
    removed.add(bn);
    folded++;
  }
  g.node = g.node.filter((n) => !removed.has(n));
  g.initializer = [...g.initializer, ...added];
  pruneInitializers(model);
  return { folded, remaining };
}

/** Drops initializers no node reads (the pre-fold weights, BN parameters). */
export function pruneInitializers(model: ModelProto): void {
  const g = graphOf(model);
  const used = new Set<string>();
  for (const n of g.node) for (const i of n.input) used.add(i);
  for (const o of g.output) used.add(o.name);
  g.initializer = g.initializer.filter((t) => used.has(t.name));
}

/** Typed initializers (raw_data, little-endian host checked by ../onnx). */
export function int8Tensor(name: string, shape: readonly number[], data: Int8Array): TensorProto {
  return rawTensor(name, shape, DataType.INT8, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}
export function uint8Tensor(name: string, shape: readonly number[], data: Uint8Array): TensorProto {
  return rawTensor(name, shape, DataType.UINT8, data);
}
export function int32Tensor(name: string, shape: readonly number[], data: Int32Array): TensorProto {
  return rawTensor(name, shape, DataType.INT32, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}
function rawTensor(name: string, shape: readonly number[], dataType: number, raw: Uint8Array): TensorProto {
  return onnx.TensorProto.create({ name, dims: [...shape], dataType, rawData: raw });
}

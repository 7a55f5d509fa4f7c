/**
 * Initializer bookkeeping shared by the QOperator and QDQ emitters: activation scale/zero-point
 * scalars (one pair per calibrated tensor, shared by every Q/DQ/QLinear op that uses it) and
 * per-channel int8 weights and int32 biases.
 */
import { floatTensor, makeModel, onnx, tensorToFloat32, type ModelProto, type NodeProto, type TensorProto } from '../onnx';
import { dims, graphOf, int32Tensor, int8Tensor, uint8Tensor, TARGET_OPSET, MS_DOMAIN, pruneInitializers } from './graph';
import { quantizeBias, quantizeWeightPerChannel, type Plan, type QParams } from './plan';

export class Emitter {
  readonly nodes: NodeProto[] = [];
  private readonly added: TensorProto[] = [];
  private readonly actDone = new Set<string>();
  private readonly weightDone = new Map<string, { q: string; s: string; z: string; scale: Float32Array; channels: number }>();

  constructor(
    readonly plan: Plan,
    /** Calibrated tensor -> grid. */
    private readonly grids: Map<string, QParams>,
  ) {}

  /** The tensor whose grid `t` uses. */
  source(t: string): string {
    const s = this.plan.quantized.get(t);
    if (s === undefined) throw new Error(`quantize: ${t} is not a quantized tensor`);
    return s;
  }

  params(t: string): QParams {
    const src = this.source(t);
    const p = this.grids.get(src);
    if (!p) throw new Error(`quantize: no calibrated range for ${src}`);
    return p;
  }

  /** [scale, zero point] initializer names of activation `t`'s grid. */
  actParams(t: string): [string, string] {
    const src = this.source(t);
    const s = `${src}_scale`;
    const z = `${src}_zero_point`;
    if (!this.actDone.has(src)) {
      const p = this.params(t);
      this.added.push(floatTensor(s, [], Float32Array.of(p.scale)), uint8Tensor(z, [], Uint8Array.of(p.zeroPoint)));
      this.actDone.add(src);
    }
    return [s, z];
  }

  /**
   * Per-channel int8 weight `name`; `axis` is the output-channel axis (0 for Conv and for Gemm
   * with transB=1). Returns initializer names and the per-channel scales (for the bias).
   */
  weight(name: string, axis: 0 | 1): { q: string; s: string; z: string; scale: Float32Array; channels: number } {
    const done = this.weightDone.get(name);
    if (done) return done;
    const t = this.plan.gi.initializers.get(name);
    if (!t) throw new Error(`quantize: weight ${name} is not an initializer`);
    const d = dims(t);
    const channels = d[axis]!;
    const { data, scale } = quantizeWeightPerChannel(tensorToFloat32(t), channels, axis);
    const r = { q: `${name}_quantized`, s: `${name}_scale`, z: `${name}_zero_point`, scale, channels };
    this.added.push(int8Tensor(r.q, d, data), floatTensor(r.s, [channels], scale), int8Tensor(r.z, [channels], new Int8Array(channels)));
    this.weightDone.set(name, r);
    return r;
  }

  /**
   * int32 bias for the op `node` reading activation `x` (its grid sets the scale), broadcast to
   * `channels` values. Returns the initializer names of data, per-channel scale and zero point.
   */
  bias(node: NodeProto, name: string, x: string, wScale: Float32Array): { q: string; s: string; z: string } {
    const t = this.plan.gi.initializers.get(name);
    if (!t) throw new Error(`quantize: bias ${name} is not an initializer`);
    let b = tensorToFloat32(t);
    const channels = wScale.length;
    if (b.length === 1 && channels > 1) b = new Float32Array(channels).fill(b[0]!);
    if (b.length !== channels) throw new Error(`quantize: bias ${name} has ${b.length} values for ${channels} channels`);
    const { data, scale } = quantizeBias(b, this.params(x).scale, wScale);
    const base = `${node.name || name}_bias`;
    const r = { q: `${base}_quantized`, s: `${base}_scale`, z: `${base}_zero_point` };
    this.added.push(int32Tensor(r.q, [channels], data), floatTensor(r.s, [channels], scale), int32Tensor(r.z, [channels], new Int32Array(channels)));
    return r;
  }

  push(n: NodeProto): void {
    this.nodes.push(n);
  }

  /** The output model: same inputs/outputs and metadata as the float model; com.microsoft imported if used. */
  finish(producerTag: string): ModelProto {
    const src = this.plan.model;
    const sg = graphOf(src);
    const g = onnx.GraphProto.create({
      name: sg.name,
      node: this.nodes,
      initializer: [...sg.initializer, ...this.added],
      input: sg.input,
      output: sg.output,
    });
    const model = makeModel({
      graph: g,
      opset: TARGET_OPSET,
      irVersion: 7,
      producerName: 'edge-resnet/models/src/quantize',
      producerVersion: '1',
      docString: `${src.docString ?? ''} | ${producerTag}`.trim(),
      metadata: Object.fromEntries(src.metadataProps.map((p) => [p.key, p.value])),
    });
    if (this.nodes.some((n) => n.domain === MS_DOMAIN)) {
      model.opsetImport = [...model.opsetImport, onnx.OperatorSetIdProto.create({ domain: MS_DOMAIN, version: 1 })];
    }
    pruneInitializers(model);
    return model;
  }
}

/** Op histogram of a model (contrib op names do not collide with standard ones). */
export function countOps(model: ModelProto): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of graphOf(model).node) out[n.opType] = (out[n.opType] ?? 0) + 1;
  return out;
}

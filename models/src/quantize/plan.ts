/**
 * What gets quantized, decided once on the folded float graph and shared by both emitters:
 * each node's role, and the activation tensors that live as uint8 (with the tensor whose
 * calibrated range they use).
 *
 * Roles:
 * - conv:  Conv (+ the Relu reading only its output) -> QLinearConv / DQ-Conv-Relu-Q
 * - add:   Add of two activations (+ Relu) -> QLinearAdd / DQ-Add-Relu-Q. A fused Relu costs
 *          nothing: the output grid starts at 0 (zero point 0), so saturation is the ReLU.
 * - pass:  MaxPool, Flatten, Reshape on a uint8 input: run on uint8 as they are, the output
 *          shares the input's scale and zero point (max and reshapes commute with the affine map)
 * - gap:   GlobalAveragePool on uint8 -> QLinearGlobalAveragePool (com.microsoft)
 * - gemm:  Gemm with constant B -> QGemm (com.microsoft) with float output: the logits never
 *          pass through a uint8 grid
 * - gemm-weights: Gemm on float input with DequantizeLinear(int8 B): weight-only int8
 * - relu:  a Relu fused into its producer (emitted as part of it, or kept in QDQ)
 * - float: everything else, between DequantizeLinear and QuantizeLinear as needed
 */
import { floatTensor, makeNode, attr, type ModelProto, type NodeProto, type TensorProto } from '../onnx';
import { attrFloat, attrInt, bnAffine, graphOf, indexGraph, namer, pruneInitializers, soleConsumer, type GraphIndex } from './graph';

export type Role = 'conv' | 'add' | 'pass' | 'gap' | 'gemm' | 'gemm-weights' | 'relu' | 'float';

export interface PlanOptions {
  /**
   * BatchNormalizations left after folding whose input is an activation (ResNet v2's
   * pre-activation BNs after a residual Add or the stem's MaxPool, and its final BN):
   * 'conv' rewrites each as a depthwise 1x1 Conv (weights = BN scale, exact in int8 since
   * each channel has one weight, which quantizes to +-127) so it runs as QLinearConv with
   * the ReLU fused; 'float' keeps it as BatchNormalization between DQ and Q (with the ReLU,
   * which a zero-point-0 QuantizeLinear then absorbs). Measured: same accuracy, and the
   * depthwise QLinearConv is the slower of the two in WASM (see index.ts DEFAULTS).
   */
  unfoldedBn: 'conv' | 'float';
  /**
   * Residual Adds with no ReLU after them (ResNet v2's identity stream): 'int8' QLinearAdd,
   * requantizing the stream at every block; 'float' a float Add on dequantized branch outputs,
   * so the stream itself is never quantized (its readers are float BNs and Adds then).
   * Adds followed by a ReLU (v1) are always QLinearAdd: the ReLU makes the output grid free.
   */
  residual: 'int8' | 'float';
  /** 'int8': QLinearGlobalAveragePool; 'float': DequantizeLinear before GlobalAveragePool. */
  pool: 'int8' | 'float';
  /**
   * Gemm with constant weights: 'int8' QGemm (uint8 input, per-channel int8 weights, float
   * output); 'weights' int8 weights behind a DequantizeLinear and a float Gemm on float input
   * (weight-only: the file stays ~1/4, the input is not requantized); 'float' the fp32 Gemm.
   */
  classifier: 'int8' | 'weights' | 'float';
}

export interface Plan {
  model: ModelProto;
  gi: GraphIndex;
  role: Map<NodeProto, Role>;
  /** Output tensor of a conv/add node after its fused Relu. */
  fusedOut: Map<NodeProto, string>;
  /** Every uint8 activation -> the tensor whose range gives its scale/zero point (itself, or a pass-op input). */
  quantized: Map<string, string>;
  /** Tensors to calibrate (the distinct values of `quantized`). */
  calibrate: string[];
  bnAsConv: number;
}

/**
 * Rewrites BN -> depthwise 1x1 Conv in place, for BNs whose input is produced by a node (the
 * data BN stays: its input is the float graph input, so it runs before the first Quantize).
 * Assumes 4-D NCHW tensors, as in every CNN this targets; a mismatch fails in calibration.
 */
function bnToDepthwiseConv(model: ModelProto): number {
  const gi = indexGraph(model);
  let n = 0;
  const g = graphOf(model);
  const fresh = namer(model);
  const added: TensorProto[] = [];
  g.node = g.node.map((bn) => {
    if (bn.opType !== 'BatchNormalization' || !gi.producer.has(bn.input[0] ?? '')) return bn;
    const { scale, shift } = bnAffine(gi, bn);
    const c = scale.length;
    const w = floatTensor(fresh(`${bn.name || 'bn'}_dw_weight`), [c, 1, 1, 1], Float32Array.from(scale));
    const b = floatTensor(fresh(`${bn.name || 'bn'}_dw_bias`), [c], Float32Array.from(shift));
    added.push(w, b);
    n++;
    return makeNode('Conv', [bn.input[0] ?? '', w.name, b.name], [bn.output[0] ?? ''], `${bn.name}_as_dwconv`, {
      group: attr.int(c),
      kernel_shape: attr.ints([1, 1]),
    });
  });
  g.initializer = [...g.initializer, ...added];
  pruneInitializers(model);
  return n;
}

const isConst = (gi: GraphIndex, name: string | undefined): boolean => !!name && gi.initializers.has(name);

export function makePlan(model: ModelProto, o: PlanOptions): Plan {
  const bnAsConv = o.unfoldedBn === 'conv' ? bnToDepthwiseConv(model) : 0;
  const gi = indexGraph(model);
  const role = new Map<NodeProto, Role>();
  const fusedOut = new Map<NodeProto, string>();
  const quantized = new Map<string, string>();
  const calibrate = new Set<string>();

  const own = (t: string): void => {
    quantized.set(t, t);
    calibrate.add(t);
  };
  /** An activation a quantized op reads: uint8 already, or quantized where it is made. */
  const need = (t: string): void => {
    if (!quantized.has(t)) own(t);
  };
  const fuseRelu = (n: NodeProto): string => {
    const y = n.output[0] ?? '';
    const r = soleConsumer(gi, y);
    if (r && r.opType === 'Relu') {
      role.set(r, 'relu');
      fusedOut.set(n, r.output[0] ?? '');
      return r.output[0] ?? '';
    }
    fusedOut.set(n, y);
    return y;
  };

  for (const n of gi.nodes) {
    if (role.has(n)) continue; // a fused Relu
    const x = n.input[0] ?? '';
    switch (n.opType) {
      case 'Conv': {
        const bias = n.input[2];
        if (!isConst(gi, n.input[1]) || (bias && !isConst(gi, bias)) || isConst(gi, x)) break;
        need(x);
        own(fuseRelu(n));
        role.set(n, 'conv');
        continue;
      }
      case 'Add': {
        const b = n.input[1] ?? '';
        if (n.input.length !== 2 || isConst(gi, x) || isConst(gi, b)) break;
        if (o.residual === 'float' && soleConsumer(gi, n.output[0] ?? '')?.opType !== 'Relu') break;
        need(x);
        need(b);
        own(fuseRelu(n));
        role.set(n, 'add');
        continue;
      }
      case 'MaxPool':
      case 'Flatten':
      case 'Reshape': {
        const src = quantized.get(x);
        if (src === undefined) break;
        if (n.opType === 'MaxPool' && n.output.length > 1 && n.output[1]) break; // Indices wanted
        if (n.opType === 'Reshape' && !isConst(gi, n.input[1])) break;
        quantized.set(n.output[0] ?? '', src);
        role.set(n, 'pass');
        continue;
      }
      case 'GlobalAveragePool': {
        if (o.pool !== 'int8' || !quantized.has(x)) break;
        own(n.output[0] ?? '');
        role.set(n, 'gap');
        continue;
      }
      case 'Gemm': {
        if (o.classifier === 'float' || !isConst(gi, n.input[1]) || isConst(gi, x)) break;
        if (o.classifier === 'weights') {
          role.set(n, 'gemm-weights');
          continue;
        }
        const c = n.input[2];
        const plain =
          attrInt(n, 'transA', 0) === 0 && attrFloat(n, 'alpha', 1) === 1 && (!c || attrFloat(n, 'beta', 1) === 1);
        if (!plain || (c && !isConst(gi, c))) break;
        need(x);
        role.set(n, 'gemm');
        continue;
      }
      default:
        break;
    }
    role.set(n, 'float');
  }
  // A graph input read only by float ops never needs a range; one read by a quantized op does
  // (need() added it). Nothing else to do here: emitters place Q/DQ from `quantized`.
  return { model, gi, role, fusedOut, quantized, calibrate: [...calibrate], bnAsConv };
}

/** uint8 asymmetric grid covering [lo, hi] and 0 (so zero padding and ReLU zeros are exact). */
export interface QParams {
  scale: number;
  zeroPoint: number;
}

export function uint8Params(lo: number, hi: number): QParams {
  const rmin = Math.min(lo, 0);
  const rmax = Math.max(hi, 0);
  if (!(rmax > rmin)) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((rmax - rmin) / 255);
  const zeroPoint = Math.max(0, Math.min(255, Math.round(-rmin / scale)));
  return { scale, zeroPoint };
}

export interface QuantizedWeight {
  data: Int8Array;
  /** One per output channel (float32 values). */
  scale: Float32Array;
}

/**
 * Per-output-channel symmetric int8: scale = max|w| / 127 over the channel (axis `axis` of a
 * tensor whose channel count is `channels`), zero point 0. Values round half away from zero.
 */
export function quantizeWeightPerChannel(w: Float32Array, channels: number, axis: 0 | 1): QuantizedWeight {
  const per = w.length / channels;
  const scale = new Float32Array(channels);
  const data = new Int8Array(w.length);
  // axis 1 of a 2-D [K, N] matrix: channel j is column j.
  const at = axis === 0 ? (ch: number, k: number): number => ch * per + k : (ch: number, k: number): number => k * channels + ch;
  for (let ch = 0; ch < channels; ch++) {
    let m = 0;
    for (let k = 0; k < per; k++) m = Math.max(m, Math.abs(w[at(ch, k)]!));
    const s = m > 0 ? Math.fround(m / 127) : 1;
    scale[ch] = s;
    for (let k = 0; k < per; k++) {
      const i = at(ch, k);
      const v = w[i]! / s;
      data[i] = Math.max(-127, Math.min(127, Math.sign(v) * Math.round(Math.abs(v))));
    }
  }
  return { data, scale };
}

/**
 * int32 bias in the accumulator's units, scale = input_scale * weight_scale[channel] (what
 * QLinearConv and QGemm add before requantizing). Saturates instead of wrapping.
 */
export function quantizeBias(b: Float32Array, inputScale: number, weightScale: Float32Array): { data: Int32Array; scale: Float32Array } {
  const data = new Int32Array(b.length);
  const scale = new Float32Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const s = Math.fround(inputScale * weightScale[i]!);
    scale[i] = s;
    const q = Math.round(b[i]! / s);
    data[i] = Math.max(-2147483647, Math.min(2147483647, q));
  }
  return { data, scale };
}

/**
 * Static int8 quantization of ONNX ResNets (any CNN made of the same ops) for onnxruntime-web's
 * WASM backend, on top of onnxruntime-node for calibration:
 *
 *   fp32 model -> normalise to opset 13 -> fold Conv+BN -> plan (which ops run in int8)
 *   -> calibrate activation ranges on real images -> emit QOperator or QDQ
 *
 * Weights: per-output-channel symmetric int8 (zero point 0). Activations: per-tensor asymmetric
 * uint8. Biases: int32 at input_scale * weight_scale. plan.ts has the op roles, DEFAULTS below
 * the measurements behind the defaults, bench/quant-formats.ts the script that made them.
 *
 * Fidelity is measured with onnxruntime-node, which on x86 CPUs without VNNI must be told to
 * avoid its saturating u8s8 kernels (fidelity.ts); otherwise it reports ~2 % less cosine than
 * the WASM backend actually delivers.
 */
import { decodeModel, encodeModel } from '../onnx';
import { collectStats, rangeOf, type CalibrationMethod } from './calibrate';
import { countOps } from './emit-common';
import { emitQdq } from './emit-qdq';
import { emitQOperator } from './emit-qoperator';
import { inputSignature } from './fidelity';
import { foldBatchNorms, normalizeModel } from './graph';
import { makePlan, uint8Params, type Plan, type PlanOptions, type QParams } from './plan';

export { measureFidelity, compareLogits, logitsNode, type Fidelity } from './fidelity';
export type { CalibrationMethod } from './calibrate';
export type { PlanOptions } from './plan';

export type QuantFormat = 'qoperator' | 'qdq';

export interface QuantizeOptions {
  /** fp32 ONNX model bytes (generator or zoo export, opset 7..13, one image input). */
  input: Uint8Array;
  /** Preprocessed NCHW tensors, one per image (batch 1 each), from the Worker's own preprocessing. */
  calibration: Float32Array[];
  /** Activation range calibration. Default 'percentile' (see DEFAULTS). */
  method?: CalibrationMethod;
  /** ONNX form to emit. Default 'qoperator' (see DEFAULTS). */
  format?: QuantFormat;
  onProgress?: (done: number, total: number, stage: string) => void;
  /** Percentile kept by method 'percentile' (the rest is clipped, half on each side). Default 99.99. */
  percentile?: number;
  /** Threads for calibration inference. Default 2. */
  threads?: number;
  /** Advanced: how v2's unfoldable BNs, the pooling and the classifier are handled (plan.ts). */
  plan?: Partial<PlanOptions>;
}

export interface QuantizeResult {
  model: Uint8Array;
  format: QuantFormat;
  method: string;
  /** Op counts of the emitted model. */
  nodes: Record<string, number>;
  /** What was done, for manifests' `notes`. */
  info: QuantizeInfo;
}

export interface QuantizeInfo {
  foldedBatchNorms: number;
  /** BNs not foldable into a preceding Conv (ResNet v2). */
  unfoldedBatchNorms: number;
  /** Of those, rewritten as depthwise 1x1 convs (run in int8). */
  batchNormsAsDepthwiseConv: number;
  calibratedTensors: number;
  calibrationImages: number;
  percentile?: number;
  plan: PlanOptions;
  /** Wall time per stage, milliseconds. */
  ms: { prepare: number; calibrate: number; ranges: number; emit: number; total: number };
}

/**
 * Defaults, chosen by measurement (bench/quant-formats.ts; synthetic weights; onnxruntime-web 1.30
 * WASM, 1 thread, CPU-time medians on a loaded 2-core machine):
 * - format: QOperator and QDQ run at the same speed (ResNet-18 v1 96.0 vs 96.4 ms, ResNet-50
 *   v1 219.0 vs 218.9 ms, 60 interleaved runs each) and give identical logits, because
 *   onnxruntime fuses the QDQ groups into the same QLinear kernels. QOperator is the default:
 *   ~1 % smaller, fewer nodes, faster session creation, and its speed does not hinge on the
 *   runtime's QDQ fusion recognising every group.
 * - method: percentile 99.99 had the best mean cosine on all four of resnet18/50 v1/v2
 *   (e.g. resnet50v1 0.9959 vs minmax 0.9940, entropy 0.9955; resnet50v2 0.9972 vs 0.9945,
 *   0.9966); 99.9 clips too much, 99.999 too little.
 * - plan: v2's unfoldable BNs and ReLU-less residual Adds in float ('float'/'float'): on
 *   resnet50v2 cosine 0.9972 vs 0.9938 with the stream requantized by QLinearAdd, and 17 %
 *   less CPU than BNs as depthwise QLinearConvs (253 vs 306 ms), 4 % less than float BNs
 *   between QLinearAdds. Pooling in float and the classifier weight-only int8 ('weights'):
 *   quantizing the pooled features cost v2 most of its error (resnet18v2 0.9910 -> 0.9975);
 *   a float classifier adds 0.0001-0.0002 cosine for a file 13-23 % larger.
 */
export const DEFAULTS: { method: CalibrationMethod; format: QuantFormat; percentile: number; plan: PlanOptions } = {
  method: 'percentile',
  format: 'qoperator',
  percentile: 99.99,
  plan: { unfoldedBn: 'float', residual: 'float', pool: 'float', classifier: 'weights' },
};

/**
 * The float graph the quantizer calibrates: normalised to opset 13, Conv+BN folded and (with
 * the default plan) the remaining activation BNs rewritten as depthwise convs. Same function as
 * the input up to float rounding; exposed so that this can be checked.
 */
export function prepareFloatModel(input: Uint8Array, plan?: Partial<PlanOptions>): { model: Uint8Array; folded: number; unfolded: number } {
  const model = decodeModel(input);
  normalizeModel(model);
  const fold = foldBatchNorms(model);
  const p = makePlan(model, { ...DEFAULTS.plan, ...plan });
  return { model: encodeModel(p.model), folded: fold.folded, unfolded: fold.remaining };
}

export interface Calibrated {
  plan: Plan;
  grids: Map<string, QParams>;
  info: Omit<QuantizeInfo, 'ms'> & { ms: Omit<QuantizeInfo['ms'], 'emit' | 'total'> };
}

/** Steps up to calibrated grids; `emit` turns the result into either form (bench uses both). */
export async function calibrateModel(o: QuantizeOptions): Promise<Calibrated> {
  const method = o.method ?? DEFAULTS.method;
  const percentile = o.percentile ?? DEFAULTS.percentile;
  const planOptions: PlanOptions = { ...DEFAULTS.plan, ...o.plan };
  if (o.calibration.length === 0) throw new Error('quantize: at least one calibration tensor is needed');
  const t0 = performance.now();
  const sig = inputSignature(o.input);
  const model = decodeModel(o.input);
  normalizeModel(model);
  const fold = foldBatchNorms(model);
  const plan = makePlan(model, planOptions);
  const t1 = performance.now();
  o.onProgress?.(0, o.calibration.length, 'calibrate');
  const stats = await collectStats(plan.model, plan.calibrate, o.calibration, {
    inputName: sig.name,
    inputDims: sig.dims,
    histograms: method !== 'minmax',
    threads: o.threads ?? 2,
    onImage: (done, total) => o.onProgress?.(done, total, 'calibrate'),
  });
  const t2 = performance.now();
  const grids = new Map<string, QParams>();
  let i = 0;
  for (const t of plan.calibrate) {
    const s = stats.get(t);
    if (!s) throw new Error(`quantize: no statistics for ${t}`);
    const [lo, hi] = rangeOf(s, method, percentile);
    grids.set(t, uint8Params(lo, hi));
    o.onProgress?.(++i, plan.calibrate.length, 'ranges');
  }
  const t3 = performance.now();
  return {
    plan,
    grids,
    info: {
      foldedBatchNorms: fold.folded,
      unfoldedBatchNorms: fold.remaining,
      batchNormsAsDepthwiseConv: plan.bnAsConv,
      calibratedTensors: plan.calibrate.length,
      calibrationImages: o.calibration.length,
      ...(method === 'percentile' ? { percentile } : {}),
      plan: planOptions,
      ms: { prepare: t1 - t0, calibrate: t2 - t1, ranges: t3 - t2 },
    },
  };
}

export function emit(c: Calibrated, format: QuantFormat, method: string): { model: Uint8Array; nodes: Record<string, number> } {
  const tag = `int8 ${format}, ${method} calibration on ${c.info.calibrationImages} images`;
  const m = format === 'qdq' ? emitQdq(c.plan, c.grids, tag) : emitQOperator(c.plan, c.grids, tag);
  return { model: encodeModel(m), nodes: countOps(m) };
}

export async function quantizeModel(o: QuantizeOptions): Promise<QuantizeResult> {
  const t0 = performance.now();
  const method = o.method ?? DEFAULTS.method;
  const format = o.format ?? DEFAULTS.format;
  const c = await calibrateModel(o);
  const t1 = performance.now();
  o.onProgress?.(0, 1, 'emit');
  const { model, nodes } = emit(c, format, method);
  o.onProgress?.(1, 1, 'emit');
  const t2 = performance.now();
  return {
    model,
    format,
    method,
    nodes,
    info: { ...c.info, ms: { ...c.info.ms, emit: t2 - t1, total: t2 - t0 } },
  };
}

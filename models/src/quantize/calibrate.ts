/**
 * Activation range calibration: runs the float model in onnxruntime-node with the tensors to be
 * quantized exposed as extra graph outputs, one image per run (bounded memory: one image's
 * activations at a time, ~300 MB for ResNet-152), and reduces each tensor to min/max and, for
 * percentile and entropy, a histogram.
 *
 * Histograms have a fixed bin width chosen from the first image and bins anchored at 0
 * (bin k covers [k*w, (k+1)*w)); later images that reach further add bins instead of
 * re-binning, so no count is ever smeared (onnxruntime's HistogramCollector grows the same way).
 */
import * as ort from 'onnxruntime-node';
import { encodeModel, onnx, type ModelProto } from '../onnx';
import { DataType } from '../onnx';
import { graphOf } from './graph';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

/** Bins spanning the first image's range; later images can add more. */
const FIRST_BINS = 2048;
/** A later image that reaches much further than the first would add bins without bound: merge pairs past this. */
const MAX_BINS = 8192;
/** uint8 activations: the number of levels the entropy search quantizes a candidate range into. */
const QUANT_LEVELS = 256;

export class Histogram {
  /** Bin width, fixed once set. */
  width = 0;
  /** Index (k) of counts[0]. */
  kMin = 0;
  counts = new Float64Array(0);
  min = Infinity;
  max = -Infinity;
  /**
   * Exact zeros (half of every ReLU output) are counted apart from the bins: every grid here
   * contains 0 exactly, so they carry no quantization error whatever the range, and left in
   * bin 0 their spike dominates the entropy search (it then picks ranges of ~1/5 of the max,
   * where no bin is merged with bin 0: cosine 0.84 on ResNet-18 instead of 0.995).
   */
  zeros = 0;

  add(data: Float32Array, lo: number, hi: number): void {
    if (!(hi >= lo)) return;
    if (this.width === 0) {
      const span = Math.max(hi, 0) - Math.min(lo, 0);
      if (span === 0) {
        // All zeros so far (e.g. a dead channel group): the width waits for non-zero data.
        this.zeros += data.length;
        this.min = Math.min(this.min, lo);
        this.max = Math.max(this.max, hi);
        return;
      }
      this.width = span / FIRST_BINS;
      this.kMin = Math.floor(Math.min(lo, 0) / this.width);
      this.counts = new Float64Array(Math.floor(Math.max(hi, 0) / this.width) - this.kMin + 1);
    }
    const kLo = Math.floor(lo / this.width);
    const kHi = Math.floor(hi / this.width);
    const kMax = this.kMin + this.counts.length - 1;
    if (kLo < this.kMin || kHi > kMax) {
      let nMin = Math.min(kLo, this.kMin);
      let nMax = Math.max(kHi, kMax);
      while (nMax - nMin + 1 > MAX_BINS) {
        this.coarsen();
        nMin = Math.floor(nMin / 2);
        nMax = Math.floor(nMax / 2);
      }
      const grown = new Float64Array(nMax - nMin + 1);
      grown.set(this.counts, this.kMin - nMin);
      this.counts = grown;
      this.kMin = nMin;
    }
    const inv = 1 / this.width;
    const off = this.kMin;
    const counts = this.counts;
    const last = counts.length - 1;
    let zeros = 0;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v === 0) {
        zeros++;
        continue;
      }
      // Float rounding at a bin edge can land one past the end: clamp.
      let k = Math.floor(v * inv) - off;
      if (k > last) k = last;
      else if (k < 0) k = 0;
      counts[k]!++;
    }
    this.zeros += zeros;
    this.min = Math.min(this.min, lo);
    this.max = Math.max(this.max, hi);
  }

  /** Doubles the bin width; bins stay anchored at 0, so bin k merges into bin floor(k / 2). */
  private coarsen(): void {
    const kMin = Math.floor(this.kMin / 2);
    const kMax = Math.floor((this.kMin + this.counts.length - 1) / 2);
    const merged = new Float64Array(kMax - kMin + 1);
    for (let j = 0; j < this.counts.length; j++) merged[Math.floor((this.kMin + j) / 2) - kMin]! += this.counts[j]!;
    this.counts = merged;
    this.kMin = kMin;
    this.width *= 2;
  }

  /** Left edge of bin index j (index into counts). */
  edge(j: number): number {
    return (this.kMin + j) * this.width;
  }
}

export interface TensorStats {
  min: number;
  max: number;
  /** Shape seen in calibration (batch 1). */
  dims: number[];
  hist?: Histogram;
}

export interface CollectOptions {
  inputName: string;
  inputDims: number[];
  histograms: boolean;
  /** Threads for the calibration runs (fidelity is always 1 thread); default 2. */
  threads?: number;
  onImage?: (done: number, total: number) => void;
}

/**
 * Runs `model` (float, not mutated) on each input with `tensors` added as outputs and returns
 * their statistics. The model is encoded once; its graph outputs are restored afterwards.
 */
export async function collectStats(
  model: ModelProto,
  tensors: readonly string[],
  inputs: readonly Float32Array[],
  o: CollectOptions,
): Promise<Map<string, TensorStats>> {
  const g = graphOf(model);
  const originalOutputs = g.output;
  const existing = new Set(originalOutputs.map((v) => v.name));
  const extra = tensors.filter((t) => !existing.has(t) && t !== o.inputName);
  g.output = [
    ...originalOutputs,
    ...extra.map((name) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: DataType.FLOAT } } })),
  ];
  let bytes: Uint8Array | undefined;
  try {
    bytes = encodeModel(model);
  } finally {
    g.output = originalOutputs;
  }
  const threads = o.threads ?? 2;
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  bytes = undefined;
  const stats = new Map<string, TensorStats>();
  const size = o.inputDims.reduce((a, b) => a * b, 1);
  const fetches = [...new Set(tensors.filter((t) => t !== o.inputName))];
  try {
    for (let i = 0; i < inputs.length; i++) {
      const x = inputs[i]!;
      if (x.length !== size) throw new Error(`quantize: calibration tensor ${i} has ${x.length} values, the model input needs ${size}`);
      const feeds = { [o.inputName]: new ort.Tensor('float32', x, o.inputDims) };
      const out = await session.run(feeds, fetches);
      const record = (name: string, data: Float32Array, d: readonly number[]): void => {
        let lo = Infinity;
        let hi = -Infinity;
        for (let k = 0; k < data.length; k++) {
          const v = data[k]!;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new Error(`quantize: tensor ${name} has non-finite values in calibration`);
        let s = stats.get(name);
        if (!s) {
          s = { min: lo, max: hi, dims: [...d], ...(o.histograms ? { hist: new Histogram() } : {}) };
          stats.set(name, s);
        }
        s.min = Math.min(s.min, lo);
        s.max = Math.max(s.max, hi);
        s.hist?.add(data, lo, hi);
      };
      for (const name of tensors) {
        if (name === o.inputName) {
          record(name, x, o.inputDims);
          continue;
        }
        const t = out[name];
        if (!t) throw new Error(`quantize: calibration run did not return ${name}`);
        if (t.type !== 'float32') throw new Error(`quantize: tensor ${name} is ${t.type}, only float32 activations are quantized`);
        record(name, t.data as Float32Array, t.dims);
      }
      // Drop native output buffers now rather than at the next GC (ResNet-152: ~300 MB a run).
      for (const t of Object.values(out)) t.dispose();
      o.onImage?.(i + 1, inputs.length);
    }
  } finally {
    await session.release();
  }
  return stats;
}

/** The [lo, hi] a tensor's uint8 grid should cover (0 is added by `uint8Params`). */
export function rangeOf(s: TensorStats, method: CalibrationMethod, percentile: number): [number, number] {
  if (method === 'minmax' || !s.hist || s.hist.width === 0) return [s.min, s.max];
  const r = method === 'percentile' ? percentileRange(s.hist, percentile) : entropyRange(s.hist);
  return [Math.max(r[0], s.min), Math.min(r[1], s.max)];
}

/**
 * Cuts (100 - p) / 2 percent of the values off each end (onnxruntime's asymmetric percentile).
 * A ReLU output's lower cut lands on its zeros, so only its top tail is clipped.
 */
export function percentileRange(h: Histogram, p: number): [number, number] {
  if (!(p > 0 && p <= 100)) throw new Error(`quantize: percentile must be in (0, 100], got ${p}`);
  // Percentiles are of all values, zeros included (in the bin starting at 0).
  const counts = Float64Array.from(h.counts);
  counts[-h.kMin]! += h.zeros;
  let total = 0;
  for (const c of counts) total += c;
  const cut = ((100 - p) / 200) * total;
  let acc = 0;
  let left = 0;
  for (let j = 0; j < counts.length; j++) {
    acc += counts[j]!;
    if (acc > cut) {
      left = j;
      break;
    }
  }
  acc = 0;
  let right = counts.length - 1;
  for (let j = counts.length - 1; j >= 0; j--) {
    acc += counts[j]!;
    if (acc > cut) {
      right = j;
      break;
    }
  }
  return [h.edge(left), h.edge(right + 1)];
}

/**
 * TensorRT's KL-divergence threshold search (Migacz, GTC 2017, as in onnxruntime's
 * get_entropy_threshold), adapted to an asymmetric uint8 grid: candidate ranges shrink both
 * ends toward 0 in proportion, so the zero point stays where the full range puts it; for a
 * ReLU output this is exactly TensorRT's one-sided search. Each candidate's clipped
 * distribution P (outliers folded into the end bins) is compared with Q, P merged into 256
 * levels and spread back over P's non-empty bins.
 */
export function entropyRange(h: Histogram): [number, number] {
  const counts = h.counts;
  const n = counts.length;
  const z = -h.kMin; // index of the bin starting at 0
  if (n <= QUANT_LEVELS) return [h.edge(0), h.edge(n)];
  // Prefix sums for the outlier counts.
  const prefix = new Float64Array(n + 1);
  for (let j = 0; j < n; j++) prefix[j + 1] = prefix[j]! + counts[j]!;
  const step = Math.max(1, Math.floor((n - QUANT_LEVELS) / 256));
  let best = Infinity;
  let bestRange: [number, number] = [h.edge(0), h.edge(n)];
  const p = new Float64Array(n);
  const q = new Float64Array(n);
  for (let width = QUANT_LEVELS; width <= n; width += step) {
    // Bins [start, end): `width` bins, split around the zero bin as the full range is.
    const below = Math.round((width * z) / n);
    const start = z - below;
    const end = start + width;
    if (start < 0 || end > n) continue;
    const m = width;
    for (let j = 0; j < m; j++) p[j] = counts[start + j]!;
    p[0]! += prefix[start]!;
    p[m - 1]! += prefix[n]! - prefix[end]!;
    // Q: the unclipped slice merged into QUANT_LEVELS groups, each spread evenly over the group's
    // bins that P has non-empty.
    for (let lvl = 0; lvl < QUANT_LEVELS; lvl++) {
      const a = Math.floor((lvl * m) / QUANT_LEVELS);
      const b = Math.floor(((lvl + 1) * m) / QUANT_LEVELS);
      let sum = 0;
      let nonzero = 0;
      for (let j = a; j < b; j++) {
        sum += counts[start + j]!;
        if (p[j] !== 0) nonzero++;
      }
      const v = nonzero > 0 ? sum / nonzero : 0;
      for (let j = a; j < b; j++) q[j] = p[j] !== 0 ? v : 0;
    }
    const kl = klDivergence(p, q, m);
    if (kl < best) {
      best = kl;
      bestRange = [h.edge(start), h.edge(end)];
    }
  }
  return bestRange;
}

/**
 * KL(P || Q) of two count vectors after onnxruntime's smooth_distribution (eps moved onto
 * zero bins so Q has no zero where P is non-zero).
 */
function klDivergence(p: Float64Array, q: Float64Array, m: number): number {
  const eps = 1e-4;
  const smooth = (v: Float64Array): { sum: number; zeros: number; eps1: number } | undefined => {
    let zeros = 0;
    let sum = 0;
    for (let j = 0; j < m; j++) {
      if (v[j] === 0) zeros++;
      sum += v[j]!;
    }
    const nonzeros = m - zeros;
    if (nonzeros === 0) return undefined;
    return { sum, zeros, eps1: (eps * zeros) / nonzeros };
  };
  const sp = smooth(p);
  const sq = smooth(q);
  if (!sp || !sq) return Infinity;
  // Totals after smoothing are unchanged (eps added to zeros, eps1 taken from non-zeros).
  let kl = 0;
  for (let j = 0; j < m; j++) {
    const pj = (p[j] === 0 ? eps : p[j]! - sp.eps1) / sp.sum;
    const qj = (q[j] === 0 ? eps : q[j]! - sq.eps1) / sq.sum;
    if (pj > 0 && qj > 0) kl += pj * Math.log(pj / qj);
  }
  return kl;
}

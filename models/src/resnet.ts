/**
 * ResNet ONNX graphs with the exact architecture of the ONNX model zoo's ResNets (exported from
 * MXNet Gluon's model zoo, `gluon/model_zoo/vision/resnet.py`, `resnet{18,34,50,101,152}_v{1,2}`)
 * and deterministic synthetic weights, since the trained weights cannot be fetched here.
 *
 * Architecture notes, from the Gluon source (the later version, which the zoo was exported from;
 * the serialized models are within 0.02 % of the zoo files' sizes, see test/node/resnet.test.ts):
 * - BottleneckV1 puts the stride on its FIRST 1x1 conv, and its two 1x1 body convs keep Gluon's
 *   default `use_bias=True` (every other conv has no bias).
 * - BottleneckV2 puts the stride on its 3x3 conv; its downsample conv takes the pre-activated
 *   input and has no BatchNorm; V2 nets start with BatchNorm(scale=False, center=False) on the
 *   data and end with BN -> ReLU before pooling.
 *
 * Synthetic weights are meant to behave like a trained net's, numerically: every BatchNorm sees
 * inputs with about the statistics it normalises by, activations stay well-scaled through all 152
 * layers, and photos get unsaturated, photo-dependent logits. How:
 * - Conv weights are He-normal truncated at 3 sigma (no outliers, friendly to int8); the stem's
 *   are spatially smoothed (fillSmoothFilters), all others shifted to sum to zero per output
 *   filter (fillZeroSumFilters).
 * - BN running statistics are *predicted* from the realised weights by propagating per-channel
 *   moments through the graph: exact means through convs, variances under an independence
 *   assumption (the stem models the spatial and R/G/B correlation of photos), rectified-Gaussian
 *   moments through ReLU, and sampled distributions for V1's non-Gaussian ReLU(stream + branch).
 *   Checked against onnxruntime on photos: per-BN output variance within ~0.55x..1.3x of gamma^2.
 * - Each residual branch ends in a BN whose gamma is scaled by 0.5/sqrt(blocks in the stage), so
 *   a stage adds a quarter to the variance of its stream whatever its depth (RESIDUAL_SCALE).
 * - The classifier has zero-sum rows, is centred on the predicted mean feature and is scaled for
 *   a target logit spread.
 */
import {
  attr,
  DataType,
  encodeModel,
  floatTensor,
  makeModel,
  makeNode,
  onnx,
  type AttrValue,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  valueInfo,
} from './onnx';

export type ResNetVersion = 'v1' | 'v2';
export type ResNetDepth = 18 | 34 | 50 | 101 | 152;

export interface ResNetOptions {
  version: ResNetVersion;
  depth: ResNetDepth;
  /** Weight seed (uint32); same options -> byte-identical model. Default 0. */
  seed?: number;
  /** Multiplies every channel count (stem, stages, bottleneck width), for tiny test models. Default 1. */
  width?: number;
  /** Batch dimension of input and output: a fixed size or a symbolic name. Default 'N'. */
  batch?: number | string;
}

export interface ResNetModel {
  model: ModelProto;
  inputName: string;
  outputName: string;
  inputShape: [number | string, number, number, number];
  outputShape: [number | string, number];
  /** Total initializer elements (weights, biases, BN gamma/beta/mean/var), as in the zoo file. */
  parameters: number;
}

export interface ResNetBuild extends Omit<ResNetModel, 'model'> {
  bytes: Uint8Array;
}

/** Opset 13: the lowest with per-axis QuantizeLinear/DequantizeLinear for the int8 quantizer. */
export const RESNET_OPSET = 13;
export const IMAGE_SIZE = 224;
export const NUM_CLASSES = 1000;

type BlockKind = 'basic' | 'bottleneck';
/** Gluon's `resnet_spec`: block kind, blocks per stage, channels [stem, stage1..4]. */
export const RESNET_SPEC: Record<ResNetDepth, { block: BlockKind; layers: number[]; channels: number[] }> = {
  18: { block: 'basic', layers: [2, 2, 2, 2], channels: [64, 64, 128, 256, 512] },
  34: { block: 'basic', layers: [3, 4, 6, 3], channels: [64, 64, 128, 256, 512] },
  50: { block: 'bottleneck', layers: [3, 4, 6, 3], channels: [64, 256, 512, 1024, 2048] },
  101: { block: 'bottleneck', layers: [3, 4, 23, 3], channels: [64, 256, 512, 1024, 2048] },
  152: { block: 'bottleneck', layers: [3, 8, 36, 3], channels: [64, 256, 512, 1024, 2048] },
};

export const RESNET_IDS = [
  'resnet18v1', 'resnet34v1', 'resnet50v1', 'resnet101v1', 'resnet152v1',
  'resnet18v2', 'resnet34v2', 'resnet50v2', 'resnet101v2', 'resnet152v2',
] as const;

/** `resnet50v2` -> { version: 'v2', depth: 50 }. */
export function parseResNetId(id: string): { version: ResNetVersion; depth: ResNetDepth } {
  const m = /^resnet(18|34|50|101|152)(v1|v2)$/.exec(id);
  if (!m) throw new Error(`not a ResNet id: ${id} (expected one of ${RESNET_IDS.join(', ')})`);
  return { depth: Number(m[1]) as ResNetDepth, version: m[2] as ResNetVersion };
}

// ---------------------------------------------------------------------------------------------
// Tunables of the synthetic weights. Changing any of them changes every generated file.

/** Conv weights are He-normal truncated at this many sigmas. */
const TRUNCATE_SIGMAS = 3;
/** Modelled correlation of normalised photo pixels: r^distance in space, and between R, G, B. */
const PIXEL_CORRELATION = 0.9;
const CHANNEL_CORRELATION = 0.8;
/** Correlation of neighbouring values inside the stem's 3x3 max-pool window (for its statistics). */
const POOL_CORRELATION = 0.5;
/**
 * Share of a final feature channel's variance that the classifier sees varying between photos
 * (after zero-sum rows remove the part common to all channels). Measured with onnxruntime on the
 * test photos; it sets the logit scale (softmax top-1 of the test photos: 0.02..0.9).
 */
const FEATURE_IMAGE_SHARE = 0.12;
/**
 * Blur (Gaussian sigma, pixels) of the stem's random filters. Unsmoothed random 7x7 filters are
 * mostly high-frequency: on photos their responses are near zero except at edges, where they
 * reach 15 sigma, and such outliers cost int8 activations most of their resolution (ResNet-152
 * v2 logit cosine after int8 QDQ ~0.97 unsmoothed, ~0.99 smoothed). Smoothing more makes photos
 * look alike to the net (more photos share a top-1 class).
 */
const STEM_SMOOTHING = 1;
/**
 * gamma of the last BN of a residual branch, times sqrt(blocks in the stage): each stage adds
 * RESIDUAL_SCALE^2 = 25 % to its stream's variance. Larger branches make the logits depend on
 * ever smaller differences between photos, so int8 noise (mostly from the first layers) swamps
 * them: with 1.0 instead of 0.5, int8 weights alone bring ResNet-50 v1's logit cosine to 0.96-0.98.
 */
const RESIDUAL_SCALE = 0.5;
/** Target standard deviation of the logits across classes. */
const LOGIT_STD = 3;
const BN_EPSILON = 1e-5;

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: xoshiro128** seeded through splitmix32, one stream per model and
// tensor name, so a tensor's values depend only on (seed, model, name, shape), not on the order
// of generation. Only +, *, sqrt, log, sin, cos and exp of IEEE doubles are involved, so a given
// Node/V8 always produces the same bytes.

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare = NaN;

  constructor(seed: number, stream = '') {
    let x = (seed ^ fnv1a(stream)) >>> 0;
    const splitmix = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix();
    this.s1 = splitmix();
    this.s2 = splitmix();
    this.s3 = splitmix();
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in (0, 1]: never 0, so Box-Muller's log is finite. */
  uniform(): number {
    return (this.nextU32() + 1) / 4294967296;
  }

  uniformIn(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Standard normal by Box-Muller (the second value of each pair is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const v = this.spare;
      this.spare = NaN;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Standard normal conditioned on |z| <= limit (rejection; rare at 3 sigma). */
  truncatedNormal(limit: number): number {
    for (;;) {
      const z = this.normal();
      if (z <= limit && z >= -limit) return z;
    }
  }
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

// ---------------------------------------------------------------------------------------------
// Moments of activations, per channel.

/**
 * Per-channel mean and variance of a tensor over images and positions. Conv and BN outputs are
 * close to Gaussian and described by these two numbers; a ReLU output also carries SAMPLES
 * representative values per channel (equal-weight quantiles), because in V1 nets the stream
 * ReLU(stream + branch) is far from Gaussian and treating it as one under-predicts its variance
 * by ~25 % per block, which compounds over 50 blocks.
 */
interface Stats {
  mean: Float64Array;
  var: Float64Array;
  /** channels x SAMPLES values, channel-major; absent for (near-)Gaussian tensors. */
  samples?: Float64Array;
}

interface Act extends Stats {
  /** ONNX value name. */
  name: string;
  channels: number;
}

const INV_SQRT_2PI = 0.3989422804014327;
const pdf = (x: number): number => INV_SQRT_2PI * Math.exp(-0.5 * x * x);

/** Standard normal CDF via Numerical Recipes' erfc approximation (fractional error < 1.2e-7). */
function cdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc =
    t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
        t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - 0.5 * erfc : 0.5 * erfc;
}

/** Mean and variance of ReLU(x) for Gaussian x ~ N(mean, var). */
function reluMoments(mean: number, variance: number): [number, number] {
  const s = Math.sqrt(Math.max(variance, 1e-12));
  const a = mean / s;
  const P = cdf(a);
  const p = pdf(a);
  const m1 = mean * P + s * p;
  const m2 = (mean * mean + variance) * P + mean * s * p;
  return [m1, Math.max(m2 - m1 * m1, 1e-12)];
}

/** Inverse standard normal CDF by bisection (only used to build the small quantile tables). */
function inverseCdf(p: number): number {
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (cdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Mid-quantiles of N(0, 1), rescaled to exactly zero mean and unit variance. */
function normalQuantiles(n: number): Float64Array {
  const q = new Float64Array(n);
  for (let j = 0; j < n; j++) q[j] = inverseCdf((j + 0.5) / n);
  let s2 = 0;
  for (let j = 0; j < n; j++) s2 += q[j]! * q[j]!;
  const k = Math.sqrt(n / s2);
  return q.map((v) => v * k);
}

const SAMPLES = 32;
/** Points per sample when a Gaussian is added to a sampled tensor (then merged back to SAMPLES). */
const SPREAD = 8;
const Q_SAMPLES = normalQuantiles(SAMPLES);
const Q_SPREAD = normalQuantiles(SPREAD);

function momentsOf(v: Float64Array): [number, number] {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j]!;
  const m = s / v.length;
  let s2 = 0;
  for (let j = 0; j < v.length; j++) s2 += (v[j]! - m) * (v[j]! - m);
  return [m, s2 / v.length];
}

/** E and Var of the max of 9 iid standard normals (order statistics), for the 3x3 max-pool. */
const MAX9_MEAN = 1.485;
const MAX9_VAR = 0.357;

// ---------------------------------------------------------------------------------------------
// Graph builder.

type Fill = (rng: Rng, n: number) => Float32Array;

const fillConst = (v: number): Fill => (_rng, n) => new Float32Array(n).fill(v);
const fillUniform = (lo: number, hi: number): Fill => (rng, n) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniformIn(lo, hi);
  return a;
};
const fillNormal = (std: number): Fill => (rng, n) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = std * rng.truncatedNormal(TRUNCATE_SIGMAS);
  return a;
};

/**
 * He-normal filters shifted to sum to zero (and rescaled to keep their variance). A filter that
 * sums to zero ignores the part of its input's mean shared by all channels, so small errors in
 * the predicted means cannot leak from one layer into the next and compound with depth.
 */
const fillZeroSumFilters = (std: number, fanIn: number): Fill => (rng, n) => {
  const a = fillNormal(std)(rng, n);
  if (fanIn < 2) return a;
  const k = Math.sqrt(fanIn / (fanIn - 1));
  for (let o = 0; o < n; o += fanIn) {
    let s = 0;
    for (let i = o; i < o + fanIn; i++) s += a[i]!;
    const m = s / fanIn;
    for (let i = o; i < o + fanIn; i++) a[i] = (a[i]! - m) * k;
  }
  return a;
};

/**
 * Spatially smooth filters for the stem, like a trained first layer's blobs and Gabors: white
 * noise blurred with a Gaussian of STEM_SMOOTHING pixels, rescaled to He's variance.
 */
const fillSmoothFilters = (std: number, planes: number, k: number): Fill => (rng, n) => {
  const a = fillNormal(1)(rng, n);
  const r = (k - 1) >> 1;
  // The blur sees only the k x k window (zeros outside), so filters stay k x k.
  const g = (d: number): number => Math.exp(-0.5 * (d / STEM_SMOOTHING) ** 2);
  const out = new Float32Array(n);
  let s2 = 0;
  for (let p = 0; p < planes; p++) {
    const base = p * k * k;
    for (let y = 0; y < k; y++) {
      for (let x = 0; x < k; x++) {
        let acc = 0;
        for (let dy = -r; dy <= r; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= k) continue;
          for (let dx = -r; dx <= r; dx++) {
            const xx = x + dx;
            if (xx < 0 || xx >= k) continue;
            acc += g(dy) * g(dx) * a[base + yy * k + xx]!;
          }
        }
        out[base + y * k + x] = acc;
        s2 += acc * acc;
      }
    }
  }
  // Blurred noise is Gaussian again, tails included: clip it at the same 3 sigma as the rest.
  const lim = TRUNCATE_SIGMAS * Math.sqrt(s2 / n);
  let c2 = 0;
  for (let i = 0; i < n; i++) {
    out[i] = Math.min(lim, Math.max(-lim, out[i]!));
    c2 += out[i]! * out[i]!;
  }
  const scale = std / Math.sqrt(c2 / n);
  for (let i = 0; i < n; i++) out[i] = out[i]! * scale;
  return out;
};

interface BnInit {
  gamma: Fill;
  beta: Fill;
}

/** Gluon's automatic names: `<net prefix><scope><type><n>`, counted per scope and type. */
class Names {
  private counts = new Map<string, number>();
  constructor(private readonly prefix: string) {}
  next(scope: string, type: string): string {
    const key = `${scope}${type}`;
    const n = this.counts.get(key) ?? 0;
    this.counts.set(key, n + 1);
    return `${this.prefix}${scope}${type}${n}`;
  }
}

class Builder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  parameters = 0;

  constructor(
    private readonly seed: number,
    /** Prefixed to tensor names to key their random streams, so models do not share tensors. */
    private readonly streamPrefix: string,
    /** False: only count parameters (no weights, no statistics), for cheap size checks. */
    readonly materialize: boolean,
  ) {}

  private param(name: string, dims: number[], fill: Fill): Float32Array {
    const n = dims.reduce((a, b) => a * b, 1);
    this.parameters += n;
    if (!this.materialize) return new Float32Array(0);
    const data = fill(new Rng(this.seed, this.streamPrefix + name), n);
    this.initializers.push(floatTensor(name, dims, data));
    return data;
  }

  /** Like param, but with values already computed (BN running statistics). */
  private paramValues(name: string, dims: number[], values: () => ArrayLike<number>): void {
    const n = dims.reduce((a, b) => a * b, 1);
    this.parameters += n;
    if (!this.materialize) return;
    this.initializers.push(floatTensor(name, dims, Float32Array.from(values())));
  }

  private node(op: string, inputs: string[], output: string, name: string, attrs: Record<string, AttrValue> = {}): void {
    this.nodes.push(makeNode(op, inputs, [output], name, attrs));
  }

  private act(name: string, channels: number, stats?: Stats): Act {
    const a: Act = {
      name,
      channels,
      mean: stats?.mean ?? new Float64Array(channels),
      var: stats?.var ?? new Float64Array(channels),
    };
    if (stats?.samples) a.samples = stats.samples;
    return a;
  }

  input(name: string, channels: number, mean: number, variance: number): Act {
    return this.act(name, channels, {
      mean: new Float64Array(channels).fill(mean),
      var: new Float64Array(channels).fill(variance),
    });
  }

  conv(
    x: Act,
    layer: string,
    out: number,
    kernel: number,
    stride: number,
    opts: { bias?: boolean; correlatedInput?: boolean } = {},
  ): Act {
    const inC = x.channels;
    const k2 = kernel * kernel;
    const fanIn = inC * k2;
    // Truncation at 3 sigma removes 2.7 % of the variance; undo it so the init is exactly He's.
    const std = Math.sqrt(2 / fanIn) / Math.sqrt(1 - (2 * TRUNCATE_SIGMAS * pdf(TRUNCATE_SIGMAS)) / (2 * cdf(TRUNCATE_SIGMAS) - 1));
    const w = this.param(
      `${layer}_weight`,
      [out, inC, kernel, kernel],
      opts.correlatedInput ? fillSmoothFilters(std, inC * out, kernel) : fillZeroSumFilters(std, fanIn),
    );
    const inputs = [x.name, `${layer}_weight`];
    let b: Float32Array | undefined;
    if (opts.bias) {
      b = this.param(`${layer}_bias`, [out], fillNormal(0.02));
      inputs.push(`${layer}_bias`);
    }
    const pad = (kernel - 1) >> 1;
    this.node('Conv', inputs, `${layer}_fwd`, `${layer}_fwd`, {
      dilations: attr.ints([1, 1]),
      group: attr.int(1),
      kernel_shape: attr.ints([kernel, kernel]),
      pads: attr.ints([pad, pad, pad, pad]),
      strides: attr.ints([stride, stride]),
    });
    if (!this.materialize) return this.act(`${layer}_fwd`, out);

    const mean = new Float64Array(out);
    const variance = new Float64Array(out);
    const kernelCov = opts.correlatedInput ? photoCovariance(inC, kernel) : undefined;
    for (let o = 0; o < out; o++) {
      let m = b ? b[o]! : 0;
      let v = 0;
      for (let i = 0; i < inC; i++) {
        let s = 0;
        let s2 = 0;
        const base = (o * inC + i) * k2;
        for (let k = 0; k < k2; k++) {
          const wk = w[base + k]!;
          s += wk;
          s2 += wk * wk;
        }
        m += s * x.mean[i]!;
        v += s2 * x.var[i]!;
      }
      if (kernelCov) {
        // Photos are far from white noise: neighbouring pixels and R, G, B move together, so
        // the response of a filter depends on its low frequencies. w^T C w instead of sum w^2 v.
        v = 0;
        const wo = w.subarray(o * fanIn, (o + 1) * fanIn);
        for (let a = 0; a < fanIn; a++) {
          let acc = 0;
          const row = a * fanIn;
          for (let c = 0; c < fanIn; c++) acc += kernelCov[row + c]! * wo[c]!;
          v += wo[a]! * acc;
        }
        v *= x.var[0]!;
      }
      mean[o] = m;
      variance[o] = v;
    }
    return this.act(`${layer}_fwd`, out, { mean, var: variance });
  }

  batchNorm(x: Act, layer: string, init: BnInit): Act {
    const c = x.channels;
    const gamma = this.param(`${layer}_gamma`, [c], init.gamma);
    const beta = this.param(`${layer}_beta`, [c], init.beta);
    // Running statistics are what the BN's input is predicted to have, so it normalises.
    this.paramValues(`${layer}_running_mean`, [c], () => x.mean);
    this.paramValues(`${layer}_running_var`, [c], () => x.var.map((v) => Math.max(v, 1e-6)));
    this.node(
      'BatchNormalization',
      [x.name, `${layer}_gamma`, `${layer}_beta`, `${layer}_running_mean`, `${layer}_running_var`],
      `${layer}_fwd`,
      `${layer}_fwd`,
      { epsilon: attr.float(BN_EPSILON), momentum: attr.float(0.9) },
    );
    if (!this.materialize) return this.act(`${layer}_fwd`, c);
    const mean = Float64Array.from(beta);
    const variance = new Float64Array(c);
    for (let i = 0; i < c; i++) {
      const g = gamma[i]!;
      variance[i] = (g * g * x.var[i]!) / (Math.max(x.var[i]!, 1e-6) + BN_EPSILON);
    }
    return this.act(`${layer}_fwd`, c, { mean, var: variance });
  }

  relu(x: Act, layer: string): Act {
    this.node('Relu', [x.name], `${layer}_fwd`, `${layer}_fwd`);
    return this.reluStats(x, `${layer}_fwd`);
  }

  private reluStats(x: Act, name: string): Act {
    const c = x.channels;
    if (!this.materialize) return this.act(name, c);
    const mean = new Float64Array(c);
    const variance = new Float64Array(c);
    const samples = new Float64Array(c * SAMPLES);
    for (let i = 0; i < c; i++) {
      const row = samples.subarray(i * SAMPLES, (i + 1) * SAMPLES);
      if (x.samples) {
        for (let j = 0; j < SAMPLES; j++) row[j] = Math.max(0, x.samples[i * SAMPLES + j]!);
        [mean[i], variance[i]] = momentsOf(row);
      } else {
        const sd = Math.sqrt(x.var[i]!);
        for (let j = 0; j < SAMPLES; j++) row[j] = Math.max(0, x.mean[i]! + sd * Q_SAMPLES[j]!);
        [mean[i], variance[i]] = reluMoments(x.mean[i]!, x.var[i]!);
      }
    }
    return this.act(name, c, { mean, var: variance, samples });
  }

  /** 3x3/2 max-pool of ReLU(pre); statistics from max-of-correlated-Gaussians, then ReLU. */
  maxPoolAfterRelu(x: Act, pre: Act, layer: string): Act {
    this.node('MaxPool', [x.name], `${layer}_fwd`, `${layer}_fwd`, {
      kernel_shape: attr.ints([3, 3]),
      pads: attr.ints([1, 1, 1, 1]),
      strides: attr.ints([2, 2]),
    });
    // max and ReLU commute: take the max of the Gaussian pre-activations, then rectify.
    const mean = new Float64Array(x.channels);
    const variance = new Float64Array(x.channels);
    for (let i = 0; i < x.channels; i++) {
      const s = Math.sqrt(pre.var[i]!);
      mean[i] = pre.mean[i]! + s * Math.sqrt(1 - POOL_CORRELATION) * MAX9_MEAN;
      variance[i] = pre.var[i]! * (POOL_CORRELATION + (1 - POOL_CORRELATION) * MAX9_VAR);
    }
    return this.reluStats(this.act('', x.channels, { mean, var: variance }), `${layer}_fwd`);
  }

  add(a: Act, b: Act, layer: string): Act {
    const name = `${layer}_fwd`;
    this.node('Add', [a.name, b.name], name, name);
    const c = a.channels;
    const mean = new Float64Array(c);
    const variance = new Float64Array(c);
    for (let i = 0; i < c; i++) {
      mean[i] = a.mean[i]! + b.mean[i]!;
      variance[i] = a.var[i]! + b.var[i]!;
    }
    const sampled = a.samples ? a : b.samples ? b : undefined;
    const gauss = sampled === a ? b : a;
    if (!this.materialize || !sampled?.samples || gauss.samples) return this.act(name, c, { mean, var: variance });
    // Sampled + independent Gaussian: spread every sample over SPREAD Gaussian points, sort,
    // and merge each run of SPREAD into one value; then restore the exact variance.
    const samples = new Float64Array(c * SAMPLES);
    const pts = new Float64Array(SAMPLES * SPREAD);
    for (let i = 0; i < c; i++) {
      const gm = gauss.mean[i]!;
      const gs = Math.sqrt(gauss.var[i]!);
      for (let j = 0; j < SAMPLES; j++) {
        const base = sampled.samples[i * SAMPLES + j]! + gm;
        for (let k = 0; k < SPREAD; k++) pts[j * SPREAD + k] = base + gs * Q_SPREAD[k]!;
      }
      pts.sort();
      const row = samples.subarray(i * SAMPLES, (i + 1) * SAMPLES);
      for (let j = 0; j < SAMPLES; j++) {
        let acc = 0;
        for (let k = 0; k < SPREAD; k++) acc += pts[j * SPREAD + k]!;
        row[j] = acc / SPREAD;
      }
      const [m, v] = momentsOf(row);
      const k = v > 0 ? Math.sqrt(variance[i]! / v) : 1;
      for (let j = 0; j < SAMPLES; j++) row[j] = mean[i]! + (row[j]! - m) * k;
    }
    return this.act(name, c, { mean, var: variance, samples });
  }

  /** GlobalAveragePool -> Flatten -> Gemm, the classifier centred on the predicted mean feature. */
  classifier(x: Act, poolLayer: string, flattenLayer: string, denseLayer: string, classes: number): string {
    this.node('GlobalAveragePool', [x.name], `${poolLayer}_fwd`, `${poolLayer}_fwd`);
    this.node('Flatten', [`${poolLayer}_fwd`], `${flattenLayer}_fwd`, `${flattenLayer}_fwd`, { axis: attr.int(1) });
    const c = x.channels;
    let imageVar = 0;
    for (let i = 0; i < c; i++) imageVar += FEATURE_IMAGE_SHARE * x.var[i]!;
    const std = LOGIT_STD / Math.sqrt(Math.max(imageVar, 1e-12));
    // Zero-sum rows: an error in the predicted mean shared by all channels shifts no logit.
    const w = this.param(`${denseLayer}_weight`, [classes, c], fillZeroSumFilters(std, c));
    // A random net's features share a large image-independent mean; centring the logits on it
    // leaves the image-dependent part to pick the class (else one class wins for every photo).
    this.paramValues(`${denseLayer}_bias`, [classes], () => {
      const bias = new Float64Array(classes);
      for (let k = 0; k < classes; k++) {
        let s = 0;
        for (let i = 0; i < c; i++) s += w[k * c + i]! * x.mean[i]!;
        bias[k] = -s;
      }
      return bias;
    });
    const out = `${denseLayer}_fwd`;
    this.node('Gemm', [`${flattenLayer}_fwd`, `${denseLayer}_weight`, `${denseLayer}_bias`], out, out, {
      alpha: attr.float(1),
      beta: attr.float(1),
      transB: attr.int(1),
    });
    return out;
  }
}

/**
 * Covariance (unit variance) of a k x k patch over `channels` normalised photo channels, as a
 * (channels*k*k)^2 matrix in OIHW order: r^distance spatially times a fixed inter-channel factor.
 */
function photoCovariance(channels: number, k: number): Float64Array {
  const n = channels * k * k;
  const cov = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    const ca = Math.floor(a / (k * k));
    const ya = Math.floor((a % (k * k)) / k);
    const xa = a % k;
    for (let b = 0; b < n; b++) {
      const cb = Math.floor(b / (k * k));
      const yb = Math.floor((b % (k * k)) / k);
      const xb = b % k;
      const d = Math.hypot(ya - yb, xa - xb);
      cov[a * n + b] = (ca === cb ? 1 : CHANNEL_CORRELATION) * Math.pow(PIXEL_CORRELATION, d);
    }
  }
  return cov;
}

// ---------------------------------------------------------------------------------------------
// The nets.

const scaled = (c: number, width: number): number => Math.max(1, Math.round(c * width));

const bnNormal: BnInit = { gamma: fillUniform(0.8, 1.2), beta: fillUniform(-0.2, 0.2) };
/** Last BN of a residual branch: small, so the identity path dominates a deep stage. */
const bnResidual = (alpha: number): BnInit => ({
  gamma: fillUniform(0.8 * alpha, 1.2 * alpha),
  beta: fillUniform(-0.05 * alpha, 0.05 * alpha),
});
const bnShortcut: BnInit = { gamma: fillUniform(0.8, 1.2), beta: fillUniform(-0.05, 0.05) };

function buildV1(bld: Builder, names: Names, data: Act, spec: (typeof RESNET_SPEC)[ResNetDepth], width: number): string {
  const ch = spec.channels;
  let x = bld.conv(data, names.next('', 'conv'), scaled(ch[0]!, width), 7, 2, { correlatedInput: true });
  const bn0 = bld.batchNorm(x, names.next('', 'batchnorm'), bnNormal);
  const r0 = bld.relu(bn0, names.next('', 'relu'));
  x = bld.maxPoolAfterRelu(r0, bn0, names.next('', 'pool'));

  spec.layers.forEach((blocks, s) => {
    const scope = `stage${s + 1}_`;
    const alpha = RESIDUAL_SCALE / Math.sqrt(blocks);
    for (let j = 0; j < blocks; j++) {
      const inCh = j === 0 ? ch[s]! : ch[s + 1]!;
      const outCh = ch[s + 1]!;
      const stride = j === 0 && s > 0 ? 2 : 1;
      const downsample = j === 0 && inCh !== outCh;
      const C = scaled(outCh, width);
      const residual = x;
      let b: Act;
      if (spec.block === 'basic') {
        // Gluon creation order: body conv, bn, relu, conv, bn, then downsample conv, bn.
        b = bld.conv(x, names.next(scope, 'conv'), C, 3, stride);
        b = bld.batchNorm(b, names.next(scope, 'batchnorm'), bnNormal);
        b = bld.relu(b, names.next(scope, 'relu'));
        b = bld.conv(b, names.next(scope, 'conv'), C, 3, 1);
        b = bld.batchNorm(b, names.next(scope, 'batchnorm'), bnResidual(alpha));
      } else {
        const mid = scaled(outCh / 4, width);
        b = bld.conv(x, names.next(scope, 'conv'), mid, 1, stride, { bias: true });
        b = bld.batchNorm(b, names.next(scope, 'batchnorm'), bnNormal);
        b = bld.relu(b, names.next(scope, 'relu'));
        b = bld.conv(b, names.next(scope, 'conv'), mid, 3, 1);
        b = bld.batchNorm(b, names.next(scope, 'batchnorm'), bnNormal);
        b = bld.relu(b, names.next(scope, 'relu'));
        b = bld.conv(b, names.next(scope, 'conv'), C, 1, 1, { bias: true });
        b = bld.batchNorm(b, names.next(scope, 'batchnorm'), bnResidual(alpha));
      }
      let sc = residual;
      if (downsample) {
        sc = bld.conv(residual, names.next(scope, 'conv'), C, 1, stride);
        sc = bld.batchNorm(sc, names.next(scope, 'batchnorm'), bnShortcut);
      }
      const sum = bld.add(b, sc, names.next(scope, '_plus'));
      x = bld.relu(sum, names.next(scope, 'activation'));
    }
  });
  return bld.classifier(x, names.next('', 'pool'), names.next('', 'flatten'), names.next('', 'dense'), NUM_CLASSES);
}

function buildV2(bld: Builder, names: Names, data: Act, spec: (typeof RESNET_SPEC)[ResNetDepth], width: number): string {
  const ch = spec.channels;
  // BatchNorm(scale=False, center=False): the export still carries gamma=1 and beta=0.
  let x = bld.batchNorm(data, names.next('', 'batchnorm'), { gamma: fillConst(1), beta: fillConst(0) });
  x = bld.conv(x, names.next('', 'conv'), scaled(ch[0]!, width), 7, 2, { correlatedInput: true });
  const bn1 = bld.batchNorm(x, names.next('', 'batchnorm'), bnNormal);
  const r0 = bld.relu(bn1, names.next('', 'relu'));
  x = bld.maxPoolAfterRelu(r0, bn1, names.next('', 'pool'));

  spec.layers.forEach((blocks, s) => {
    const scope = `stage${s + 1}_`;
    const alpha = RESIDUAL_SCALE / Math.sqrt(blocks);
    for (let j = 0; j < blocks; j++) {
      const inCh = j === 0 ? ch[s]! : ch[s + 1]!;
      const outCh = ch[s + 1]!;
      const stride = j === 0 && s > 0 ? 2 : 1;
      const downsample = j === 0 && inCh !== outCh;
      const C = scaled(outCh, width);
      const basic = spec.block === 'basic';
      // Names in Gluon's creation order (bn1, conv1, bn2, conv2, [bn3, conv3], downsample),
      // which differs from the order the nodes run in.
      const bnN = [names.next(scope, 'batchnorm')];
      const convN = [names.next(scope, 'conv')];
      bnN.push(names.next(scope, 'batchnorm'));
      convN.push(names.next(scope, 'conv'));
      if (!basic) {
        bnN.push(names.next(scope, 'batchnorm'));
        convN.push(names.next(scope, 'conv'));
      }
      const dsName = downsample ? names.next(scope, 'conv') : '';

      const pre = bld.relu(bld.batchNorm(x, bnN[0]!, bnNormal), names.next(scope, 'activation'));
      const sc = downsample ? bld.conv(pre, dsName, C, 1, stride) : x;
      let b: Act;
      if (basic) {
        b = bld.conv(pre, convN[0]!, C, 3, stride);
        b = bld.relu(bld.batchNorm(b, bnN[1]!, bnResidual(alpha)), names.next(scope, 'activation'));
        b = bld.conv(b, convN[1]!, C, 3, 1);
      } else {
        const mid = scaled(outCh / 4, width);
        b = bld.conv(pre, convN[0]!, mid, 1, 1);
        b = bld.relu(bld.batchNorm(b, bnN[1]!, bnNormal), names.next(scope, 'activation'));
        b = bld.conv(b, convN[1]!, mid, 3, stride);
        b = bld.relu(bld.batchNorm(b, bnN[2]!, bnResidual(alpha)), names.next(scope, 'activation'));
        b = bld.conv(b, convN[2]!, C, 1, 1);
      }
      x = bld.add(b, sc, names.next(scope, '_plus'));
    }
  });
  x = bld.batchNorm(x, names.next('', 'batchnorm'), bnNormal);
  x = bld.relu(x, names.next('', 'relu'));
  return bld.classifier(x, names.next('', 'pool'), names.next('', 'flatten'), names.next('', 'dense'), NUM_CLASSES);
}

function build(opts: ResNetOptions, materialize: boolean): ResNetModel {
  const { version, depth } = opts;
  const spec = RESNET_SPEC[depth];
  if (!spec) throw new Error(`unsupported ResNet depth ${String(depth)}`);
  const seed = (opts.seed ?? 0) >>> 0;
  const width = opts.width ?? 1;
  if (!(width > 0)) throw new Error(`width must be > 0, got ${width}`);
  const batch = opts.batch ?? 'N';

  const bld = new Builder(seed, `resnet${depth}${version}/`, materialize);
  // Gluon names the first ResNetV1 of a session `resnetv10_`, the first ResNetV2 `resnetv20_`.
  const names = new Names(version === 'v1' ? 'resnetv10_' : 'resnetv20_');
  const inputName = 'data';
  // Normalised photos: about zero mean and unit variance per channel.
  const data = bld.input(inputName, 3, 0, 1);
  const outputName = (version === 'v1' ? buildV1 : buildV2)(bld, names, data, spec, width);

  const inputShape: ResNetModel['inputShape'] = [batch, 3, IMAGE_SIZE, IMAGE_SIZE];
  const outputShape: ResNetModel['outputShape'] = [batch, NUM_CLASSES];
  const model = makeModel({
    opset: RESNET_OPSET,
    irVersion: 7,
    producerName: 'edge-resnet/models/src/resnet.ts',
    producerVersion: '1',
    docString: `ResNet-${depth} ${version} (MXNet Gluon architecture), synthetic weights seed=${seed} width=${width}`,
    graph: onnx.GraphProto.create({
      name: `resnet${depth}${version}`,
      node: bld.nodes,
      initializer: bld.initializers,
      input: [valueInfo(inputName, DataType.FLOAT, inputShape)],
      output: [valueInfo(outputName, DataType.FLOAT, outputShape)],
    }),
    metadata: { seed: String(seed), width: String(width), weights: 'synthetic' },
  });
  return { model, inputName, outputName, inputShape, outputShape, parameters: bld.parameters };
}

/** The model as a protobuf message (initializers view the generated Float32Arrays). */
export function buildResNetModel(opts: ResNetOptions): ResNetModel {
  return build(opts, true);
}

/** Generates and serializes a model: `bytes` is a complete .onnx file. */
export function buildResNet(opts: ResNetOptions): ResNetBuild {
  const { model, ...rest } = build(opts, true);
  return { ...rest, bytes: encodeModel(model) };
}

/** Parameter count of the architecture, without generating any weight (cheap at any depth). */
export function countResNetParameters(opts: Pick<ResNetOptions, 'version' | 'depth' | 'width'>): number {
  return build({ ...opts, seed: 0 }, false).parameters;
}

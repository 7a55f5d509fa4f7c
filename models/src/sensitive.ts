/**
 * An input-sensitive synthetic ResNet: the instrument for judging decoding fidelity (how much a
 * few levels of pixel difference in the 224x224 crop move a network's output).
 *
 * models/src/resnet.ts *predicts* every BatchNorm's running statistics from the weights; that is
 * good enough for well-scaled activations, but a net whose statistics do not match the photos it
 * sees is not a faithful stand-in for a trained one when the question is "how much does the
 * output move". Here the same architecture and weights get statistics *measured on photos*,
 * layer by layer in graph order (each BN changes what the layers after it see):
 *
 * 1. The photos are augmented in tensor space (mirror, zoomed crops) for more samples per channel.
 * 2. BatchNorms are grouped in waves: a wave is every BN whose input no uncalibrated BN feeds. For
 *    each wave, the graph is cut down to what computes those BNs' inputs, which become graph
 *    outputs; onnxruntime-node runs it on every view and each BN gets the per-channel mean and
 *    (population) variance of its input over views x positions as running_mean / running_var.
 *    On the calibration photos every BN output then has mean beta and variance gamma^2 exactly,
 *    as a trained net's BNs have on its training distribution.
 * 3. The classifier keeps its random rows but is re-centred on the measured mean feature (bias)
 *    and scaled so that the median top-1 softmax probability on the views is TARGET_TOP1.
 *
 * Deterministic for the same photos and options: the weights are resnet.ts's (seeded), the
 * augmentation is fixed, and onnxruntime's CPU kernels give the same results run to run.
 */
import * as ort from 'onnxruntime-node';
import { encodeModel, floatTensor, graphOf, onnx, tensorToFloat32, type ModelProto, type NodeProto, type TensorProto } from './onnx';
import { buildResNetModel, IMAGE_SIZE, type ResNetDepth, type ResNetModel, type ResNetVersion } from './resnet';

export interface SensitiveOptions {
  depth?: 18 | 34 | 50;
  version?: ResNetVersion;
  seed?: number;
  width?: number;
}

export interface SensitiveBuildOptions extends SensitiveOptions {
  /** Median top-1 probability the classifier is scaled to on the calibration views. Default TARGET_TOP1. */
  targetTop1?: number;
  /** Augmented views per photo, 1..VIEWS.length. Default all. */
  views?: number;
  /** Extra Gaussian blur (sigma, pixels) of the stem's 7x7 filters before calibration; 0 = as generated. */
  stemBlur?: number;
  /** onnxruntime intra-op threads for the calibration runs. Default 2. */
  threads?: number;
  /** Images per calibration run. Default 8. */
  batch?: number;
  onProgress?: (message: string) => void;
}

/** What the build measured, for reports. */
export interface SensitiveBuild extends Omit<ResNetModel, 'model'> {
  bytes: Uint8Array;
  /** Calibration tensors (photos x views). */
  views: number;
  /** BatchNorm nodes and the waves they were calibrated in. */
  batchNorms: number;
  waves: number;
  /** Classifier scale applied on top of the generated rows, and the median top-1 it gives on the views. */
  logitScale: number;
  medianTop1: number;
  ms: number;
}

export const TARGET_TOP1 = 0.5;
const PLANE = IMAGE_SIZE * IMAGE_SIZE;
const TENSOR = 3 * PLANE;

/**
 * Tensor-space views of a photo: [mirror, crop side / 224, crop centre x, y in 0..1]. Crops are
 * resized back to 224 bilinearly (a zoom-in), so every view is a plausible network input.
 */
const VIEWS: readonly (readonly [boolean, number, number, number])[] = [
  [false, 1, 0.5, 0.5],
  [true, 1, 0.5, 0.5],
  [false, 0.75, 0, 0],
  [true, 0.75, 1, 0],
  [false, 0.75, 0, 1],
  [true, 0.75, 1, 1],
  [false, 0.6, 0.5, 0.5],
  [true, 0.85, 0.5, 0.3],
];

/** One augmented view of a CHW 3x224x224 tensor. */
export function viewOf(t: Float32Array, mirror: boolean, side: number, cx: number, cy: number): Float32Array {
  const out = new Float32Array(TENSOR);
  const s = side * IMAGE_SIZE;
  const x0 = (IMAGE_SIZE - s) * cx;
  const y0 = (IMAGE_SIZE - s) * cy;
  const k = s / IMAGE_SIZE;
  for (let y = 0; y < IMAGE_SIZE; y++) {
    // Pixel centres: output (y + 0.5) maps to source y0 + (y + 0.5) * k - 0.5.
    const sy = Math.min(IMAGE_SIZE - 1, Math.max(0, y0 + (y + 0.5) * k - 0.5));
    const ya = Math.floor(sy);
    const yb = Math.min(IMAGE_SIZE - 1, ya + 1);
    const fy = sy - ya;
    for (let x = 0; x < IMAGE_SIZE; x++) {
      const xo = mirror ? IMAGE_SIZE - 1 - x : x;
      const sx = Math.min(IMAGE_SIZE - 1, Math.max(0, x0 + (x + 0.5) * k - 0.5));
      const xa = Math.floor(sx);
      const xb = Math.min(IMAGE_SIZE - 1, xa + 1);
      const fx = sx - xa;
      for (let c = 0; c < 3; c++) {
        const p = c * PLANE;
        const top = t[p + ya * IMAGE_SIZE + xa]! * (1 - fx) + t[p + ya * IMAGE_SIZE + xb]! * fx;
        const bot = t[p + yb * IMAGE_SIZE + xa]! * (1 - fx) + t[p + yb * IMAGE_SIZE + xb]! * fx;
        out[p + y * IMAGE_SIZE + xo] = top * (1 - fy) + bot * fy;
      }
    }
  }
  return out;
}

export function augment(photos: readonly Float32Array[], views = VIEWS.length): Float32Array[] {
  const out: Float32Array[] = [];
  for (const p of photos) {
    if (p.length !== TENSOR) throw new Error(`sensitive: a photo tensor has ${p.length} values, expected 1x3x224x224 = ${TENSOR}`);
    for (const [mirror, side, cx, cy] of VIEWS.slice(0, Math.max(1, views))) {
      out.push(side === 1 && !mirror ? p : viewOf(p, mirror, side, cx, cy));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Graph helpers.

interface Bn {
  node: NodeProto;
  input: string;
  meanName: string;
  varName: string;
  wave: number;
}

function producers(nodes: readonly NodeProto[]): Map<string, number> {
  const m = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => m.set(o, i)));
  return m;
}

/** BatchNorm nodes with their wave: 1 + the largest wave of any BN upstream of their input. */
function batchNormWaves(nodes: readonly NodeProto[]): Bn[] {
  const prod = producers(nodes);
  // Per node: the largest wave of a BN at or above it (0 = none).
  const depth = new Array<number>(nodes.length).fill(0);
  const bns: Bn[] = [];
  nodes.forEach((n, i) => {
    let d = 0;
    const inputs = n.opType === 'BatchNormalization' ? n.input.slice(0, 1) : n.input;
    for (const name of inputs) {
      const j = prod.get(name);
      if (j !== undefined) d = Math.max(d, depth[j]!);
    }
    if (n.opType === 'BatchNormalization') {
      const wave = d + 1;
      bns.push({ node: n, input: n.input[0]!, meanName: n.input[3]!, varName: n.input[4]!, wave });
      depth[i] = wave;
    } else {
      depth[i] = d;
    }
  });
  return bns;
}

/** A model computing `outputs` from the graph input: only the nodes and initializers they need. */
function cutModel(model: ModelProto, outputs: readonly string[]): Uint8Array {
  const g = graphOf(model);
  const prod = producers(g.node);
  const keep = new Set<number>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const name = stack.pop()!;
    const i = prod.get(name);
    if (i === undefined || keep.has(i)) continue;
    keep.add(i);
    stack.push(...g.node[i]!.input);
  }
  const nodes = g.node.filter((_, i) => keep.has(i));
  const used = new Set(nodes.flatMap((n) => n.input));
  const graph = onnx.GraphProto.create({
    name: g.name,
    node: nodes,
    initializer: g.initializer.filter((t) => used.has(t.name)),
    input: g.input,
    output: outputs.map((name) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1 } } })),
  });
  return encodeModel(onnx.ModelProto.create({ irVersion: model.irVersion, opsetImport: model.opsetImport, graph }));
}

/** Runs `bytes` on `inputs` in batches and hands each batch's named outputs to `sink`. */
async function runBatches(
  bytes: Uint8Array,
  inputName: string,
  inputs: readonly Float32Array[],
  outputs: readonly string[],
  o: { threads: number; batch: number },
  sink: (out: Record<string, ort.Tensor>) => void,
): Promise<void> {
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  try {
    for (let start = 0; start < inputs.length; start += o.batch) {
      const n = Math.min(o.batch, inputs.length - start);
      const x = new Float32Array(n * TENSOR);
      for (let i = 0; i < n; i++) x.set(inputs[start + i]!, i * TENSOR);
      const out = await session.run({ [inputName]: new ort.Tensor('float32', x, [n, 3, IMAGE_SIZE, IMAGE_SIZE]) }, [...outputs]);
      try {
        sink(out);
      } finally {
        for (const t of Object.values(out)) t.dispose();
      }
    }
  } finally {
    await session.release();
  }
}

/** Per-channel sums of an NCHW (or NC) tensor, shifted by `shift` for precision. */
class ChannelMoments {
  n = 0;
  readonly s1: Float64Array;
  readonly s2: Float64Array;
  shift: Float64Array | undefined;
  constructor(readonly channels: number) {
    this.s1 = new Float64Array(channels);
    this.s2 = new Float64Array(channels);
  }

  add(t: ort.Tensor): void {
    const d = t.data as Float32Array;
    const [n, c] = t.dims as [number, number];
    if (c !== this.channels) throw new Error(`sensitive: expected ${this.channels} channels, got ${c}`);
    const hw = d.length / (n * c);
    if (!this.shift) {
      // First image's channel means: keeps the shifted sums small.
      this.shift = new Float64Array(c);
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let k = 0; k < hw; k++) s += d[ch * hw + k]!;
        this.shift[ch] = s / hw;
      }
    }
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const base = (b * c + ch) * hw;
        const k0 = this.shift[ch]!;
        let a1 = 0;
        let a2 = 0;
        for (let k = 0; k < hw; k++) {
          const v = d[base + k]! - k0;
          a1 += v;
          a2 += v * v;
        }
        this.s1[ch]! += a1;
        this.s2[ch]! += a2;
      }
    }
    this.n += n * hw;
  }

  mean(): Float64Array {
    return this.s1.map((s, ch) => s / this.n + this.shift![ch]!);
  }

  variance(): Float64Array {
    return this.s2.map((s, ch) => {
      const m = this.s1[ch]! / this.n;
      return Math.max(s / this.n - m * m, 0);
    });
  }
}

function replaceInitializer(model: ModelProto, name: string, data: Float32Array): void {
  const g = graphOf(model);
  const i = g.initializer.findIndex((t) => t.name === name);
  if (i < 0) throw new Error(`sensitive: no initializer ${name}`);
  const dims = (g.initializer[i]!.dims ?? []).map(Number);
  g.initializer[i] = floatTensor(name, dims, data);
}

function initializer(model: ModelProto, name: string): TensorProto {
  const t = graphOf(model).initializer.find((x) => x.name === name);
  if (!t) throw new Error(`sensitive: no initializer ${name}`);
  return t;
}

/** Blurs every 2-D plane of the first Conv's filters, keeping each filter's L2 norm. */
function blurStem(model: ModelProto, sigma: number): void {
  const conv = graphOf(model).node.find((n) => n.opType === 'Conv')!;
  const t = initializer(model, conv.input[1]!);
  const dims = (t.dims ?? []).map(Number) as [number, number, number, number];
  const w = tensorToFloat32(t);
  const [o, i, k] = dims;
  const g = Array.from({ length: k }, (_, d) => Array.from({ length: k }, (_, e) => Math.exp(-0.5 * ((d - e) / sigma) ** 2)));
  const out = new Float32Array(w.length);
  for (let f = 0; f < o; f++) {
    let before = 0;
    let after = 0;
    for (let c = 0; c < i; c++) {
      const base = (f * i + c) * k * k;
      for (let y = 0; y < k; y++) {
        for (let x = 0; x < k; x++) {
          let acc = 0;
          for (let yy = 0; yy < k; yy++) for (let xx = 0; xx < k; xx++) acc += g[y]![yy]! * g[x]![xx]! * w[base + yy * k + xx]!;
          out[base + y * k + x] = acc;
          before += w[base + y * k + x]! ** 2;
          after += acc * acc;
        }
      }
    }
    const s = after > 0 ? Math.sqrt(before / after) : 1;
    for (let j = f * i * k * k; j < (f + 1) * i * k * k; j++) out[j] = out[j]! * s;
  }
  replaceInitializer(model, conv.input[1]!, out);
}

function softmaxTop1(logits: Float64Array | Float32Array, scale: number): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v * scale);
  let s = 0;
  for (const v of logits) s += Math.exp(v * scale - max);
  return 1 / s;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// ---------------------------------------------------------------------------------------------

/**
 * ResNet (default 18 v1, fp32, synthetic weights) whose BN statistics are measured layer by layer
 * on `photos` (preprocessed 1x3x224x224 tensors), and whose classifier is scaled so that top-1
 * probabilities on photos look like a trained net's (roughly 0.2-0.9). Deterministic for the
 * same photos and options.
 */
export async function buildSensitiveResNet(photos: Float32Array[], opts: SensitiveOptions = {}): Promise<Uint8Array> {
  return (await buildSensitiveResNetMeasured(photos, opts)).bytes;
}

export async function buildSensitiveResNetMeasured(photos: readonly Float32Array[], opts: SensitiveBuildOptions = {}): Promise<SensitiveBuild> {
  const t0 = performance.now();
  if (photos.length === 0) throw new Error('sensitive: need at least one photo');
  const depth: ResNetDepth = opts.depth ?? 18;
  const version = opts.version ?? 'v1';
  const run = { threads: opts.threads ?? 2, batch: opts.batch ?? 8 };
  const built = buildResNetModel({ version, depth, seed: opts.seed ?? 0, width: opts.width ?? 1, batch: 'N' });
  const model = built.model;
  const g = graphOf(model);
  if (opts.stemBlur) blurStem(model, opts.stemBlur);
  const views = augment(photos, opts.views);
  const bns = batchNormWaves(g.node);
  const waves = Math.max(...bns.map((b) => b.wave));

  for (let w = 1; w <= waves; w++) {
    const wave = bns.filter((b) => b.wave === w);
    const inputs = [...new Set(wave.map((b) => b.input))];
    const moments = new Map<string, ChannelMoments>();
    const channels = (b: Bn): number => tensorToFloat32(initializer(model, b.meanName)).length;
    for (const b of wave) moments.set(b.input, new ChannelMoments(channels(b)));
    // The graph input itself (v2's data BN) is measured straight from the views.
    const fromGraph = inputs.filter((n) => n !== built.inputName);
    if (inputs.includes(built.inputName)) {
      const m = moments.get(built.inputName)!;
      for (const v of views) m.add(new ort.Tensor('float32', v, [1, 3, IMAGE_SIZE, IMAGE_SIZE]));
    }
    if (fromGraph.length > 0) {
      await runBatches(cutModel(model, fromGraph), built.inputName, views, fromGraph, run, (out) => {
        for (const name of fromGraph) moments.get(name)!.add(out[name]!);
      });
    }
    for (const b of wave) {
      const m = moments.get(b.input)!;
      replaceInitializer(model, b.meanName, Float32Array.from(m.mean()));
      replaceInitializer(model, b.varName, Float32Array.from(m.variance(), (v) => Math.max(v, 1e-6)));
    }
    opts.onProgress?.(`BN wave ${w}/${waves}: ${wave.map((b) => b.node.name).join(', ')}`);
  }

  // Classifier: centre on the measured mean feature, then scale for the target top-1.
  const gemm = g.node.find((n) => n.opType === 'Gemm');
  if (!gemm) throw new Error('sensitive: no Gemm classifier');
  const [featName, wName, bName] = gemm.input as [string, string, string];
  const weight = tensorToFloat32(initializer(model, wName));
  const classes = tensorToFloat32(initializer(model, bName)).length;
  const c = weight.length / classes;
  const features: Float32Array[] = [];
  await runBatches(cutModel(model, [featName]), built.inputName, views, [featName], run, (out) => {
    const d = out[featName]!.data as Float32Array;
    for (let i = 0; i < d.length; i += c) features.push(Float32Array.from(d.subarray(i, i + c)));
  });
  const mu = new Float64Array(c);
  for (const f of features) for (let i = 0; i < c; i++) mu[i]! += f[i]! / features.length;
  const bias = new Float64Array(classes);
  for (let k = 0; k < classes; k++) {
    let s = 0;
    for (let i = 0; i < c; i++) s += weight[k * c + i]! * mu[i]!;
    bias[k] = -s;
  }
  const logits = features.map((f) => {
    const z = new Float64Array(classes);
    for (let k = 0; k < classes; k++) {
      let s = bias[k]!;
      for (let i = 0; i < c; i++) s += weight[k * c + i]! * f[i]!;
      z[k] = s;
    }
    return z;
  });
  const target = opts.targetTop1 ?? TARGET_TOP1;
  // Median top-1 grows with the scale: bisect in log space.
  let lo = 1e-4;
  let hi = 1e4;
  for (let i = 0; i < 80; i++) {
    const mid = Math.sqrt(lo * hi);
    if (median(logits.map((z) => softmaxTop1(z, mid))) < target) lo = mid;
    else hi = mid;
  }
  const scale = Math.sqrt(lo * hi);
  replaceInitializer(model, wName, weight.map((v) => v * scale));
  replaceInitializer(model, bName, Float32Array.from(bias, (v) => v * scale));
  model.docString = `${model.docString}; BN statistics measured on ${photos.length} photos (${views.length} views), classifier scaled x${scale.toPrecision(4)}`;
  model.metadataProps = [...(model.metadataProps ?? []), onnx.StringStringEntryProto.create({ key: 'bn_stats', value: `measured on ${photos.length} photos` })];

  const { model: _, ...info } = built;
  return {
    ...info,
    bytes: encodeModel(model),
    views: views.length,
    batchNorms: bns.length,
    waves,
    logitScale: scale,
    medianTop1: median(logits.map((z) => softmaxTop1(z, scale))),
    ms: performance.now() - t0,
  };
}

// ---------------------------------------------------------------------------------------------
// Checks of a built model (used by the report and the tests).

export interface BnCheck {
  name: string;
  channels: number;
  /** Over channels: (output mean - beta) / |gamma|, and output variance / gamma^2, on `photos`. */
  meanOffset: { median: number; maxAbs: number };
  varRatio: { median: number; min: number; max: number };
}

/** Per-BN output statistics of `bytes` on `photos` (ideally held out), normalised by each BN's gamma and beta. */
export async function checkBatchNorms(bytes: Uint8Array, photos: readonly Float32Array[], threads = 2): Promise<BnCheck[]> {
  const model = onnx.ModelProto.decode(bytes);
  const g = graphOf(model);
  const bnNodes = g.node.filter((n) => n.opType === 'BatchNormalization');
  const outs = bnNodes.map((n) => n.output[0]!);
  const moments = new Map<string, ChannelMoments>();
  const gammas = bnNodes.map((n) => tensorToFloat32(initializer(model, n.input[1]!)));
  const betas = bnNodes.map((n) => tensorToFloat32(initializer(model, n.input[2]!)));
  bnNodes.forEach((n, i) => moments.set(n.output[0]!, new ChannelMoments(gammas[i]!.length)));
  await runBatches(cutModel(model, outs), g.input[0]!.name, photos, outs, { threads, batch: 4 }, (out) => {
    for (const name of outs) moments.get(name)!.add(out[name]!);
  });
  return bnNodes.map((n, i) => {
    const m = moments.get(n.output[0]!)!;
    const mean = m.mean();
    const variance = m.variance();
    const gamma = gammas[i]!;
    const beta = betas[i]!;
    const off = Array.from(mean, (v, ch) => (v - beta[ch]!) / Math.abs(gamma[ch]!));
    const ratio = Array.from(variance, (v, ch) => v / (gamma[ch]! * gamma[ch]!));
    return {
      name: n.name,
      channels: gamma.length,
      meanOffset: { median: median(off), maxAbs: Math.max(...off.map(Math.abs)) },
      varRatio: { median: median(ratio), min: Math.min(...ratio), max: Math.max(...ratio) },
    };
  });
}

/** Softmax probabilities of `bytes` on each tensor (batch 1 each, fp32 onnxruntime-node). */
export async function probabilities(bytes: Uint8Array, tensors: readonly Float32Array[], threads = 2): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const out: Float32Array[] = [];
    for (const x of tensors) {
      const r = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [1, 3, IMAGE_SIZE, IMAGE_SIZE]) });
      const t = r[session.outputNames[0]!]!;
      out.push(softmax(t.data as Float32Array));
      t.dispose();
    }
    return out;
  } finally {
    await session.release();
  }
}

export function softmax(z: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  const p = new Float32Array(z.length);
  let s = 0;
  for (let k = 0; k < z.length; k++) {
    const e = Math.exp(z[k]! - max);
    p[k] = e;
    s += e;
  }
  for (let k = 0; k < z.length; k++) p[k] = p[k]! / s;
  return p;
}

/** Index of the largest value and the gap between the two largest (the top-1/top-2 margin). */
export function top2(p: Float32Array): { top1: number; margin: number } {
  let a = -1;
  let b = -1;
  for (let k = 0; k < p.length; k++) {
    if (a < 0 || p[k]! > p[a]!) {
      b = a;
      a = k;
    } else if (b < 0 || p[k]! > p[b]!) b = k;
  }
  return { top1: a, margin: p[a]! - (b >= 0 ? p[b]! : 0) };
}


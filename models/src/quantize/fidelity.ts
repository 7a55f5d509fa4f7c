/**
 * How close a quantized model's logits stay to the float model's on the same inputs.
 */
import * as ort from 'onnxruntime-node';
import { decodeModel, toNumber } from '../onnx';
import { graphOf } from './graph';

export interface Fidelity {
  images: number;
  /** Cosine similarity of the logit vectors, mean and worst over the images. */
  cosineMean: number;
  cosineMin: number;
  /** Share of images whose top-1 class is the same. */
  top1Agreement: number;
  /** Mean over images of |top5(fp32) ∩ top5(int8)| / 5. */
  top5Overlap: number;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : aa === bb ? 1 : 0;
}

export function topK(v: Float32Array, k: number): number[] {
  return Array.from(v.keys())
    .sort((i, j) => v[j]! - v[i]! || i - j)
    .slice(0, k);
}

/** Compares per-image logit vectors (same order, same length). */
export function compareLogits(ref: readonly Float32Array[], test: readonly Float32Array[]): Fidelity {
  if (ref.length !== test.length || ref.length === 0) throw new Error('fidelity: need the same, non-zero number of logit vectors');
  let sum = 0;
  let min = Infinity;
  let top1 = 0;
  let top5 = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = ref[i]!;
    const b = test[i]!;
    const c = cosine(a, b);
    sum += c;
    min = Math.min(min, c);
    const ta = topK(a, 5);
    const tb = topK(b, 5);
    if (ta[0] === tb[0]) top1++;
    top5 += ta.filter((x) => tb.includes(x)).length / 5;
  }
  return { images: ref.length, cosineMean: sum / ref.length, cosineMin: min, top1Agreement: top1 / ref.length, top5Overlap: top5 / ref.length };
}

/** Name and per-image dims (batch 1) of a model's single graph input. */
export function inputSignature(modelBytes: Uint8Array): { name: string; dims: number[] } {
  const m = decodeModel(modelBytes);
  const g = graphOf(m);
  const inits = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((v) => !inits.has(v.name));
  if (inputs.length !== 1) throw new Error(`quantize: expected one graph input, found ${inputs.length}`);
  const v = inputs[0]!;
  const shape = v.type?.tensorType?.shape?.dim ?? [];
  const d = shape.map((x, i) => {
    if (i === 0) return 1;
    const n = toNumber(x.dimValue);
    if (!(n > 0)) throw new Error(`quantize: input ${v.name} dimension ${i} is not static`);
    return n;
  });
  return { name: v.name, dims: d };
}

/** Logits of each input (batch 1), one intra-op thread, via onnxruntime-node. */
export async function logitsNode(modelBytes: Uint8Array, inputs: readonly Float32Array[]): Promise<Float32Array[]> {
  const sig = inputSignature(modelBytes);
  const session = await ort.InferenceSession.create(modelBytes, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
    // x86 CPUs without VNNI (AVX2, e.g. these machines) run u8*s8 products through
    // VPMADDUBSW, which saturates pairs of products at int16: ResNet logits lose ~2% of cosine
    // there and nowhere else (WASM, ARM, VNNI are exact). This option makes the runtime shift
    // the int8 weights to uint8 (w + 128, zero point moved along: the same products) and use its
    // exact U8U8 kernels, so the number measured here is the one the Worker's WASM backend gets.
    extra: { session: { x64quantprecision: '1' } },
  });
  try {
    const out: Float32Array[] = [];
    for (const x of inputs) {
      const r = await session.run({ [sig.name]: new ort.Tensor('float32', x, sig.dims) });
      const t = r[session.outputNames[0]!]!;
      out.push(Float32Array.from(t.data as Float32Array));
      for (const v of Object.values(r)) v.dispose();
    }
    return out;
  } finally {
    await session.release();
  }
}

export async function measureFidelity(fp32: Uint8Array, int8: Uint8Array, inputs: Float32Array[]): Promise<Fidelity> {
  const ref = await logitsNode(fp32, inputs);
  const test = await logitsNode(int8, inputs);
  return compareLogits(ref, test);
}

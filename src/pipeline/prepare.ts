/**
 * One upload to one model input: decode (at the scale the plan picks) and resize / crop /
 * normalize, streaming the rows from the decoder into the resize when the image is stored
 * upright. The Worker and the Node tools (`models view`, calibration, eval, the fidelity
 * table) all go through here, so what they see is what the model sees.
 */
import { decodePlanned, decodeRows, planDecode, type DecodeLimits, type DecodePlan } from '../image';
import type { PreprocessSpec, Reduction, RgbImage } from '../preprocess';

/** The preprocessing kernel as this layer uses it (wasm/preprocess's PreprocessKernel fits). */
export interface Preprocessor {
  run(img: RgbImage, spec: PreprocessSpec, out: Float32Array, offset: number, reduction?: Reduction): void;
  begin(width: number, height: number, spec: PreprocessSpec, reduction?: Reduction): {
    write(rows: Uint8Array, y0: number, count: number): void;
    finish(out: Float32Array, offset: number): void;
  };
}

export interface Prepared {
  plan: DecodePlan;
  /** Milliseconds decoding; when streamed, this includes the resize's horizontal pass. */
  decodeMs: number;
  /** Milliseconds in the rest of the preprocessing. */
  preprocessMs: number;
}

/** Plans the decode of `bytes` for `spec` (413/415/422 come from here, before any pixel work). */
export const planFor = (bytes: Uint8Array, spec: PreprocessSpec, limits: DecodeLimits): DecodePlan =>
  planDecode(bytes, limits, { target: spec.resizeShorter });

/**
 * Writes the model input for `bytes` (3 x cropHeight x cropWidth floats, CHW) into `out` at
 * `offset`, following `plan` (from planFor).
 */
export async function prepareInput(
  bytes: Uint8Array,
  plan: DecodePlan,
  spec: PreprocessSpec,
  limits: DecodeLimits,
  pre: Preprocessor,
  out: Float32Array,
  offset: number,
): Promise<Prepared> {
  let t = performance.now();
  if (plan.streams) {
    const job = pre.begin(plan.width, plan.height, spec, plan.reduction);
    decodeRows(bytes, plan, job, limits);
    const decodeMs = performance.now() - t;
    t = performance.now();
    job.finish(out, offset);
    return { plan, decodeMs, preprocessMs: performance.now() - t };
  }
  const image = await decodePlanned(bytes, plan, limits);
  const decodeMs = performance.now() - t;
  t = performance.now();
  pre.run(image, spec, out, offset, plan.reduction);
  return { plan, decodeMs, preprocessMs: performance.now() - t };
}

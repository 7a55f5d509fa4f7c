/**
 * Figure 3, in plain Node: JPEG decoding at the scale the Worker's decode plan picks
 * (src/pipeline/prepare.ts: reduced only where the resize still reduces >= 2x) and at full
 * size; and the preprocessing kernel (wasm) against the TypeScript reference on the image the
 * Worker preprocesses. (The Worker streams decoded rows into the kernel; here the two are
 * timed apart, on the collected image.)
 */
import { decodeImage, decodePlannedSync, planDecode, type DecodeLimits } from '../src/image/index';
import { IMAGENET_PREPROCESS } from '../src/models/manifest';
import { preprocessReference } from '../src/preprocess/reference';
import type { PreprocessKernel } from '../wasm/preprocess/index';
import type { TestJpeg } from './images';
import { BLOCK } from './options';
import { summarize, type Summary } from './stats';

export interface NodeStageResult {
  image: string;
  bytes: number;
  /** The decode at the Worker's planned scale, milliseconds. */
  decode: Summary;
  /** Size of that decode's output (smaller than the JPEG when decoded at a reduced scale). */
  decodedSize: string;
  /** The decode at full size (our exact decoder), milliseconds. */
  decodeFull: Summary;
  kernel: Summary;
  reference: Summary;
  /** reference median / kernel median. */
  kernelSpeedup: number;
  /** Kernel and reference produced the same floats on this image. */
  identical: boolean;
}

/** The image the Worker preprocesses for `bytes`: the planned decode, collected, and its reduction. */
export function workerDecode(bytes: Uint8Array, limits: DecodeLimits) {
  const plan = planDecode(bytes, limits, { target: IMAGENET_PREPROCESS.resizeShorter, collect: true });
  return { image: decodePlannedSync(bytes, plan, limits), reduction: plan.reduction };
}

/** Calls each function in turn, BLOCK at a time, so that background load hits them alike. */
function timeInTurns(iterations: number, fns: ReadonlyArray<() => void>): number[][] {
  const out = fns.map((): number[] => []);
  for (let done = 0; done < iterations; done += BLOCK) {
    fns.forEach((fn, k) => {
      for (let i = 0; i < Math.min(BLOCK, iterations - done); i++) {
        const t = performance.now();
        fn();
        out[k]!.push(performance.now() - t);
      }
    });
  }
  return out;
}

export function measureNodeStages(kernel: PreprocessKernel, jpegs: readonly TestJpeg[], iterations: number, warmup: number): NodeStageResult[] {
  const spec = IMAGENET_PREPROCESS;
  const n = 3 * spec.cropHeight * spec.cropWidth;
  return jpegs.map((jpeg) => {
    const full = { maxPixels: jpeg.width * jpeg.height };
    const { image, reduction } = workerDecode(jpeg.bytes, full);
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    // Warm-up lets V8 optimise the JS and tier up the kernel's wasm before timing; decoding is
    // the slow stage (seconds at 12 MP in full), so one untimed call of each is its warm-up.
    for (let i = 0; i < warmup; i++) {
      kernel.run(image, spec, a, 0, reduction);
      preprocessReference(image, spec, b, 0, reduction);
    }
    decodeImage(jpeg.bytes, full);
    const [kernelMs, referenceMs] = timeInTurns(iterations, [() => kernel.run(image, spec, a, 0, reduction), () => preprocessReference(image, spec, b, 0, reduction)]);
    const identical = a.every((v, i) => Object.is(v, b[i]));
    const [decodeMs, decodeFullMs] = timeInTurns(iterations, [() => workerDecode(jpeg.bytes, full), () => decodeImage(jpeg.bytes, full)]);
    const kernelSummary = summarize(kernelMs!);
    const referenceSummary = summarize(referenceMs!);
    return {
      image: jpeg.name,
      bytes: jpeg.bytes.byteLength,
      decode: summarize(decodeMs!),
      decodedSize: `${image.width}x${image.height}`,
      decodeFull: summarize(decodeFullMs!),
      kernel: kernelSummary,
      reference: referenceSummary,
      kernelSpeedup: referenceSummary.median / kernelSummary.median,
      identical,
    };
  });
}

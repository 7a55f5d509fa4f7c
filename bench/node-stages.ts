/**
 * Figure 3, in plain Node: JPEG decoding through the Worker's decodeImage, as the pipeline
 * calls it (src/pipeline/classify.ts: at the smallest scale the resize still reduces from) and
 * at full size; and the preprocessing kernel (wasm) against the TypeScript reference on the
 * image the Worker preprocesses.
 */
import { decodeImage } from '../src/image/index';
import { IMAGENET_PREPROCESS } from '../src/models/manifest';
import { preprocessReference } from '../src/preprocess/reference';
import type { PreprocessKernel } from '../wasm/preprocess/index';
import type { TestJpeg } from './images';
import { BLOCK } from './options';
import { summarize, type Summary } from './stats';

export interface NodeStageResult {
  image: string;
  bytes: number;
  /** decodeImage as the Worker calls it, milliseconds. */
  decode: Summary;
  /** Size of that decode's output (smaller than the JPEG when decoded at a reduced scale). */
  decodedSize: string;
  /** decodeImage at full size (jpeg-js), milliseconds. */
  decodeFull: Summary;
  kernel: Summary;
  reference: Summary;
  /** reference median / kernel median. */
  kernelSpeedup: number;
  /** Kernel and reference produced the same floats on this image. */
  identical: boolean;
}

/** The decode limits the pipeline passes (see classify.ts); maxPixels admits the test sizes. */
export const workerDecodeLimits = (maxPixels: number) => ({ maxPixels, minShorterSide: IMAGENET_PREPROCESS.resizeShorter });

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
    const worker = workerDecodeLimits(jpeg.width * jpeg.height);
    const image = decodeImage(jpeg.bytes, worker);
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    // Warm-up lets V8 optimise the JS and tier up the kernel's wasm before timing; decoding is
    // the slow stage (seconds at 12 MP in full), so one untimed call of each is its warm-up.
    for (let i = 0; i < warmup; i++) {
      kernel.run(image, spec, a, 0);
      preprocessReference(image, spec, b, 0);
    }
    decodeImage(jpeg.bytes, full);
    const [kernelMs, referenceMs] = timeInTurns(iterations, [() => kernel.run(image, spec, a, 0), () => preprocessReference(image, spec, b, 0)]);
    const identical = a.every((v, i) => Object.is(v, b[i]));
    const [decodeMs, decodeFullMs] = timeInTurns(iterations, [() => decodeImage(jpeg.bytes, worker), () => decodeImage(jpeg.bytes, full)]);
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

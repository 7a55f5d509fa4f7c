/**
 * The classification pipeline: uploads in, top-K classes out. It is the only place that
 * knows the order of the stages; each stage lives in its own layer (image, preprocess,
 * onnx session via the registry, postprocess).
 */
import { ApiError } from '../errors';
import { probe, type DecodeLimits, type ImageInfo } from '../image';
import { imagenetClasses } from '../models/labels';
import type { ModelManifest } from '../models/manifest';
import type { ModelRegistry } from '../models/registry';
import type { Session } from '../onnx/session';
import { float32, type Tensor } from '../onnx/tensor';
import { getKernel } from '../preprocess';
import type { Upload } from '../upload';
import { softmax, topKOf, type Prediction } from './postprocess';
import { planFor, prepareInput } from './prepare';

export interface ImageResult {
  width: number;
  height: number;
  predictions: Prediction[];
  /** All 1000 class probabilities (model output order): concepts and decisions come from these. */
  probabilities: Float64Array;
}

/** Milliseconds per stage, summed over the batch. */
export interface Timings {
  /** Waiting for the model's session: 0 when warm, R2 read + session creation when cold. */
  model: number;
  decode: number;
  preprocess: number;
  inference: number;
}

export interface Classification {
  manifest: ModelManifest;
  images: ImageResult[];
  timings: Timings;
}

export interface ClassifyOptions {
  topk: number;
  limits: DecodeLimits;
  /** Epoch ms after which waiting for the model gives up with a 503. */
  deadlineMs?: number;
  /**
   * Waits until `bytes` of decode memory may be taken in this isolate (admission control);
   * the returned function gives them back. Without it, decodes are not metered.
   */
  reserveMemory?: (bytes: number) => Promise<() => void>;
}

export async function classify(registry: ModelRegistry, modelId: string, uploads: Upload[], options: ClassifyOptions): Promise<Classification> {
  // Refuse what the headers already condemn (not an image, too many pixels) before spending
  // time on a model load or a decode. The sizes reported are the uploads' own (upright),
  // whatever scale they are decoded at.
  const sizes = uploads.map((upload) => uprightSize(blame(upload, uploads.length, () => probe(upload.bytes, options.limits))));

  const waitStarted = performance.now();
  return registry.use(modelId, async ({ manifest, session }) => {
    const timings: Timings = { model: performance.now() - waitStarted, decode: 0, preprocess: 0, inference: 0 };
    const spec = manifest.preprocess;
    const imageSize = 3 * spec.cropHeight * spec.cropWidth;
    const batch = new Float32Array(uploads.length * imageSize);

    // Every plan first: a batch whose third image needs too much memory is refused before
    // the first is decoded. Big JPEGs decode at the smallest scale the resize still reduces from.
    const limits = options.limits;
    const plans = uploads.map((upload) => blame(upload, uploads.length, () => planFor(upload.bytes, spec, limits)));
    // One image in flight at a time, streamed (or decoded) straight into its slot of the batch.
    for (const [i, upload] of uploads.entries()) {
      const plan = plans[i]!;
      const release = await blameAsync(upload, uploads.length, () => options.reserveMemory?.(plan.memoryBytes));
      try {
        const done = await blameAsync(upload, uploads.length, () => prepareInput(upload.bytes, plan, spec, limits, getKernel(), batch, i * imageSize));
        timings.decode += done.decodeMs;
        timings.preprocess += done.preprocessMs;
      } finally {
        release?.();
      }
    }

    const t = performance.now();
    const logits = await runBatch(session, manifest, batch, uploads.length);
    timings.inference = performance.now() - t;

    const classes = imagenetClasses();
    const width = logits.length / uploads.length;
    const images = sizes.map((size, i) => {
      const probabilities = softmax(logits.subarray(i * width, (i + 1) * width));
      return { ...size, predictions: topKOf(probabilities, classes, options.topk), probabilities };
    });
    return { manifest, images, timings };
  }, { deadlineMs: options.deadlineMs });
}

/**
 * One session run for the whole batch when the model's batch dimension is symbolic; models
 * exported with a fixed batch (the zoo's opset-7 files have 1) run in chunks of that size,
 * the last one zero-padded.
 */
async function runBatch(session: Session, manifest: ModelManifest, batch: Float32Array, count: number): Promise<Float32Array> {
  const [n, c, h, w] = manifest.input.shape;
  const dims = [c, h as number, w as number];
  if (typeof n !== 'number') return logitsOf(await session.run(float32(batch, [count, ...dims])));
  const imageSize = batch.length / count;
  const chunks: Float32Array[] = [];
  for (let start = 0; start < count; start += n) {
    const chunk = new Float32Array(n * imageSize);
    chunk.set(batch.subarray(start * imageSize, Math.min(count, start + n) * imageSize));
    const out = logitsOf(await session.run(float32(chunk, [n, ...dims])));
    chunks.push(out.subarray(0, (Math.min(count, start + n) - start) * (out.length / n)));
  }
  const logits = new Float32Array(chunks.reduce((a, x) => a + x.length, 0));
  chunks.reduce((offset, x) => (logits.set(x, offset), offset + x.length), 0);
  return logits;
}

function logitsOf(output: Tensor): Float32Array {
  if (output.type !== 'float32') throw new Error(`model output is ${output.type}, expected float32 logits`);
  return output.data;
}

/** EXIF orientations 5-8 transpose the stored image. */
function uprightSize(info: ImageInfo): { width: number; height: number } {
  return info.orientation >= 5 ? { width: info.height, height: info.width } : { width: info.width, height: info.height };
}

/** Names the image in an error about it when a request carries several. */
function blame<T>(upload: Upload, count: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw named(err, upload, count);
  }
}

async function blameAsync<T>(upload: Upload, count: number, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw named(err, upload, count);
  }
}

function named(err: unknown, upload: Upload, count: number): unknown {
  if (err instanceof ApiError && count > 1) {
    return new ApiError(err.type, `${upload.name}: ${err.message}`, { cause: err, retryAfter: err.retryAfter });
  }
  return err;
}

/**
 * The classification pipeline: uploads in, top-K classes out. It is the only place that
 * knows the order of the stages; each stage lives in its own layer (image, preprocess,
 * onnx session via the registry, postprocess).
 */
import { ApiError } from '../errors';
import { decodeImage, probe, type DecodeLimits } from '../image';
import { imagenetClasses } from '../models/labels';
import type { ModelManifest } from '../models/manifest';
import type { ModelRegistry } from '../models/registry';
import { preprocess } from '../preprocess';
import type { Upload } from '../upload';
import { topK, type Prediction } from './postprocess';

export interface ImageResult {
  width: number;
  height: number;
  predictions: Prediction[];
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

export async function classify(
  registry: ModelRegistry,
  modelId: string,
  uploads: Upload[],
  options: { topk: number; limits: DecodeLimits },
): Promise<Classification> {
  // Refuse what the headers already condemn (not an image, too many pixels) before
  // spending time on a model load or a decode.
  uploads.forEach((upload) => blame(upload, uploads.length, () => probe(upload.bytes, options.limits)));

  const waitStarted = performance.now();
  return registry.use(modelId, async ({ manifest, session }) => {
    const timings: Timings = { model: performance.now() - waitStarted, decode: 0, preprocess: 0, inference: 0 };
    const spec = manifest.preprocess;
    const imageSize = 3 * spec.cropHeight * spec.cropWidth;
    const batch = new Float32Array(uploads.length * imageSize);
    const sizes: Array<{ width: number; height: number }> = [];

    // One decoded image alive at a time: it goes straight into its slot of the batch tensor.
    uploads.forEach((upload, i) => {
      let t = performance.now();
      const image = blame(upload, uploads.length, () => decodeImage(upload.bytes, options.limits));
      timings.decode += performance.now() - t;
      t = performance.now();
      preprocess(image, spec, batch, i * imageSize);
      timings.preprocess += performance.now() - t;
      sizes.push({ width: image.width, height: image.height });
    });

    const t = performance.now();
    const output = await session.run(batch, [uploads.length, 3, spec.cropHeight, spec.cropWidth]);
    timings.inference = performance.now() - t;

    const classes = imagenetClasses();
    const width = output.data.length / uploads.length;
    const images = sizes.map((size, i) => ({
      ...size,
      predictions: topK(output.data.subarray(i * width, (i + 1) * width), classes, options.topk),
    }));
    return { manifest, images, timings };
  });
}

/** Names the image in an error about it when a request carries several. */
function blame<T>(upload: Upload, count: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ApiError && count > 1) throw new ApiError(err.type, `${upload.name}: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * The classification pipeline: uploads in, top-K classes out. It is the only place that
 * knows the order of the stages; each stage lives in its own layer (image, preprocess,
 * onnx session via the registry, postprocess).
 */
import { imageDigest, modelVersion, type CacheStatus, type ResultCache } from '../cache';
import { ApiError } from '../errors';
import { probe, type DecodeLimits, type ImageInfo } from '../image';
import { imagenetClasses } from '../models/labels';
import type { ModelManifest } from '../models/manifest';
import type { ModelRegistry } from '../models/registry';
import type { Session } from '../onnx/session';
import { getKernel } from '../preprocess';
import type { Upload } from '../upload';
import { runBatch } from './batch';
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
  /** Hashing the uploads and looking them up in the result cache (0 without one). */
  cache: number;
}

export interface Classification {
  manifest: ModelManifest;
  images: ImageResult[];
  timings: Timings;
  /** HIT when every image came from the result cache, MISS when any was computed, BYPASS without a cache. */
  cache: CacheStatus;
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
  /**
   * The result cache (src/cache): images whose bytes this model has classified before are
   * answered from it without decoding or inference, and computed ones are written to it.
   */
  cache?: ResultCache;
}

export async function classify(registry: ModelRegistry, modelId: string, uploads: Upload[], options: ClassifyOptions): Promise<Classification> {
  // Refuse what the headers already condemn (not an image, too many pixels) before spending
  // time on a model load or a decode. The sizes reported are the uploads' own (upright),
  // whatever scale they are decoded at. Kept on cache hits too: it is cheap, and a cached
  // answer must not change what is refused.
  const sizes = uploads.map((upload) => uprightSize(blame(upload, uploads.length, () => probe(upload.bytes, options.limits))));
  const classes = imagenetClasses();
  const answer = (manifest: ModelManifest, logits: Float32Array[], timings: Timings, cache: CacheStatus): Classification => ({
    manifest,
    images: sizes.map((size, i) => {
      const probabilities = softmax(logits[i]!);
      return { ...size, predictions: topKOf(probabilities, classes, options.topk), probabilities };
    }),
    timings,
    cache,
  });

  const cache = options.cache;
  const lookupStarted = performance.now();
  const found = cache ? await lookUp(registry, modelId, uploads, cache, classes.length) : undefined;
  const cacheMs = performance.now() - lookupStarted;
  if (found?.logits.every((l) => l !== undefined)) {
    return answer(found.manifest, found.logits as Float32Array[], { model: 0, decode: 0, preprocess: 0, inference: 0, cache: cacheMs }, 'HIT');
  }

  const waitStarted = performance.now();
  return registry.use(modelId, async ({ manifest, session }) => {
    const timings: Timings = { model: performance.now() - waitStarted, decode: 0, preprocess: 0, inference: 0, cache: cacheMs };
    // The session in hand may be another version than the manifest looked up with (a model
    // uploaded again meanwhile): then nothing found is this model's, and every key changes.
    const sameModel = found !== undefined && found.version === (await modelVersion(manifest));
    const logits: Array<Float32Array | undefined> = sameModel ? [...found.logits] : uploads.map(() => undefined);
    const todo = uploads.flatMap((_, i) => (logits[i] === undefined ? [i] : []));

    const computed = await infer(session, manifest, todo.map((i) => uploads[i]!), options, timings, uploads.length);
    const width = computed.length / todo.length;
    for (const [j, i] of todo.entries()) logits[i] = computed.subarray(j * width, (j + 1) * width);

    if (cache && found) {
      for (const i of todo) cache.put(await cache.key(found.digests[i]!, manifest), logits[i]!);
    }
    return answer(manifest, logits as Float32Array[], timings, cache ? 'MISS' : 'BYPASS');
  }, { deadlineMs: options.deadlineMs });
}

interface Lookup {
  /** The manifest the keys were made with: the loaded model's, or R2's when none is loaded. */
  manifest: ModelManifest;
  /** Its modelVersion, to tell whether the session that computes the misses is the same model. */
  version: string;
  digests: string[];
  /** Per upload, its cached logits or undefined. */
  logits: Array<Float32Array | undefined>;
}

/**
 * The uploads' cached logits under the model as this isolate would run it: the manifest of
 * its loaded session if any (no R2 read), else the one in R2, whose errors (unknown model,
 * R2 failing) are the same the miss path would give. No session is loaded here: a hit on a
 * cold isolate costs a manifest read, not a model load.
 */
async function lookUp(registry: ModelRegistry, modelId: string, uploads: Upload[], cache: ResultCache, classes: number): Promise<Lookup> {
  const manifest = registry.loaded().find((m) => m.manifest.id === modelId)?.manifest ?? (await registry.manifest(modelId));
  const digests = await Promise.all(uploads.map((u) => imageDigest(u.bytes)));
  const logits = await Promise.all(digests.map(async (d) => cache.get(await cache.key(d, manifest), classes)));
  return { manifest, version: await modelVersion(manifest), digests, logits };
}

/** Decodes and preprocesses `uploads` into one batch and runs it: their logits, row by row. */
async function infer(session: Session, manifest: ModelManifest, uploads: Upload[], options: ClassifyOptions, timings: Timings, requestImages: number): Promise<Float32Array> {
  const spec = manifest.preprocess;
  const imageSize = 3 * spec.cropHeight * spec.cropWidth;
  const batch = new Float32Array(uploads.length * imageSize);
  // Errors name the image when the request carried several, whether or not all are decoded here.
  const count = requestImages;

  // Every plan first: a batch whose third image needs too much memory is refused before
  // the first is decoded. Big JPEGs decode at the smallest scale the resize still reduces from.
  const limits = options.limits;
  const plans = uploads.map((upload) => blame(upload, count, () => planFor(upload.bytes, spec, limits)));
  // One image in flight at a time, streamed (or decoded) straight into its slot of the batch.
  for (const [i, upload] of uploads.entries()) {
    const plan = plans[i]!;
    const release = await blameAsync(upload, count, () => options.reserveMemory?.(plan.memoryBytes));
    try {
      const done = await blameAsync(upload, count, () => prepareInput(upload.bytes, plan, spec, limits, getKernel(), batch, i * imageSize));
      timings.decode += done.decodeMs;
      timings.preprocess += done.preprocessMs;
    } finally {
      release?.();
    }
  }

  const t = performance.now();
  const logits = await runBatch(session, manifest, batch, uploads.length);
  timings.inference = performance.now() - t;
  return logits;
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
  if (err instanceof ApiError && (count > 1 || upload.fromUrl)) {
    return new ApiError(err.type, `${upload.name}: ${err.message}`, { cause: err, retryAfter: err.retryAfter });
  }
  return err;
}

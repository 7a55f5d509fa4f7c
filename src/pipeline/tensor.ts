/**
 * The pipeline for callers who preprocess themselves: an input tensor already resized, cropped
 * and normalized as the model's manifest says (NCHW float32) goes straight to the model. No
 * decoding, no preprocessing, and no result cache (its keys are image bytes). The answer has
 * the shape `classify` gives, so routes render both alike.
 */
import { badRequest } from '../errors';
import { imagenetClasses } from '../models/labels';
import type { ModelManifest } from '../models/manifest';
import type { ModelRegistry } from '../models/registry';
import { runBatch } from './batch';
import type { Classification, Timings } from './classify';
import { softmax, topKOf } from './postprocess';

export interface InputTensor {
  data: Float32Array;
  dims: readonly number[];
}

export interface TensorOptions {
  topk: number;
  /** Epoch ms after which waiting for the model gives up with a 503. */
  deadlineMs?: number;
}

/** Runs `input` ([N, C, H, W] as the model takes it) through the model: one ImageResult per row. */
export async function classifyTensor(registry: ModelRegistry, modelId: string, input: InputTensor, options: TensorOptions): Promise<Classification> {
  const waitStarted = performance.now();
  return registry.use(
    modelId,
    async ({ manifest, session }) => {
      const timings: Timings = { model: performance.now() - waitStarted, decode: 0, preprocess: 0, inference: 0, cache: 0 };
      const count = checkShape(manifest, input);
      const started = performance.now();
      const logits = await runBatch(session, manifest, input.data, count);
      timings.inference = performance.now() - started;
      const classes = imagenetClasses();
      const width = logits.length / count;
      const { cropWidth, cropHeight } = manifest.preprocess;
      const images = Array.from({ length: count }, (_, i) => {
        const probabilities = softmax(logits.subarray(i * width, (i + 1) * width));
        // The size the model saw: the caller's image before their own preprocessing is unknown here.
        return { width: cropWidth, height: cropHeight, predictions: topKOf(probabilities, classes, options.topk), probabilities };
      });
      return { manifest, images, timings, cache: 'BYPASS' };
    },
    { deadlineMs: options.deadlineMs },
  );
}

/** The model's input dims for a batch of `count`: [N, C, H, W] with N free when the model's batch is symbolic. */
function inputDims(manifest: ModelManifest, count: number): [number, number, number, number] {
  const [, c, h, w] = manifest.input.shape;
  return [count, c, h, w];
}

/** The batch size of `input` once its dims match the model's (a 400 naming both otherwise). */
function checkShape(manifest: ModelManifest, input: InputTensor): number {
  const [count = 0, ...rest] = input.dims;
  const expected = inputDims(manifest, count);
  const ok = input.dims.length === 4 && count >= 1 && rest.every((d, i) => d === expected[i + 1]);
  if (!ok) throw badRequest(`input shape [${input.dims.join(',')}] does not match the model's [N,${expected.slice(1).join(',')}]`);
  if (input.data.length !== count * expected[1] * expected[2] * expected[3]) {
    throw badRequest(`input has ${input.data.length} values, shape [${input.dims.join(',')}] needs ${count * expected[1] * expected[2] * expected[3]}`);
  }
  return count;
}


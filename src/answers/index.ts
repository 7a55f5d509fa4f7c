/**
 * Answer bodies shared by the HTTP routes and the RPC entrypoint, so that a consumer Worker
 * gets exactly what an HTTP client gets. Pure: classification results in, JSON-able bodies out.
 */
import { scoreConcepts, type Concept } from '../concepts';
import type { ModelManifest } from '../models/manifest';
import type { Classification, Timings } from '../pipeline/classify';
import { decide, type ResolvedPolicy } from '../policies';
import type { ModelInfo, ModerateBody, PredictBody, PredictionBody, TimingsBody } from './types';

export type * from './types';

export const SYNTHETIC_NOTICE =
  'This model has synthetic weights generated for testing: its classes are not a real classification of the image.';

export const ms = (x: number) => Math.round(x * 100) / 100;

export function describe(m: ModelManifest): ModelInfo {
  return { id: m.id, version: m.version, depth: m.depth, precision: m.precision, weights: m.weights, source: m.source };
}

/** The native `/predict` body; `total` is the handler's own time, `concepts` those asked for. */
export function nativeBody({ manifest, images, timings }: Classification, total: number, concepts?: Concept[]): PredictBody {
  return {
    model: describe(manifest),
    ...notice(manifest),
    images: images.map(({ width, height, predictions, probabilities }) => ({
      width,
      height,
      predictions: predictions.map(prediction),
      ...(concepts ? { concepts: scoreConcepts(concepts, probabilities) } : {}),
    })),
    timings: timingsBody(timings, total),
  };
}

/** The `/moderate` body: every image's decision under `policy`. */
export function moderateBody({ manifest, images, timings }: Classification, policy: ResolvedPolicy, total: number): ModerateBody {
  return {
    model: describe(manifest),
    // A decision made from synthetic weights is no decision about the image: say so on every one.
    ...notice(manifest),
    policy: { name: policy.policy.name, sha256: policy.sha256 },
    images: images.map(({ width, height, predictions, probabilities }) => ({
      width,
      height,
      ...decide(policy, probabilities),
      predictions: predictions.map(prediction),
    })),
    timings: timingsBody(timings, total),
  };
}

const notice = (m: ModelManifest): { notice?: string } => (m.weights === 'synthetic' ? { notice: SYNTHETIC_NOTICE } : {});

// Only the public fields: a Prediction may carry more than the answer promises.
const prediction = ({ index, synset, label, probability }: PredictionBody): PredictionBody => ({ index, synset, label, probability });

function timingsBody(timings: Timings, total: number): TimingsBody {
  return {
    model: ms(timings.model),
    decode: ms(timings.decode),
    preprocess: ms(timings.preprocess),
    inference: ms(timings.inference),
    total: ms(total),
  };
}

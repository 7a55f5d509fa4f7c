/**
 * The predict routes. One pipeline, four URL shapes, three answer shapes: `/predict` gives
 * the native answer; the model-server (`/<model>/predict`) and TorchServe (`/predictions/<model>`)
 * forms answer exactly as those servers do, so their existing clients keep working.
 */
import { Hono, type Context } from 'hono';
import type { Admitted } from '../admission';
import { ms, nativeBody, SYNTHETIC_NOTICE } from '../answers';
import { resultCacheFor, type ResultCache } from '../cache';
import { getConfig } from '../config';
import { badRequest } from '../errors';
import { registryFor } from '../models/registry';
import { classify, type Classification } from '../pipeline/classify';
import { readUploads } from '../upload';
import { parseConceptList } from '../concepts';

type Shape = 'native' | 'model-server' | 'torchserve';

type PredictEnv = { Bindings: Env; Variables: Admitted };

export const predictRoutes = new Hono<PredictEnv>()
  .post('/predict', (c) => predict(c, getConfig(c.env).defaultModel, 'native'))
  .post('/predict/:model', (c) => predict(c, c.req.param('model'), 'native'))
  .post('/predictions/:model', (c) => predict(c, c.req.param('model'), 'torchserve'))
  .post('/:model/predict', (c) => predict(c, c.req.param('model'), 'model-server'));

async function predict(c: Context<PredictEnv>, modelId: string, shape: Shape): Promise<Response> {
  const started = performance.now();
  const config = getConfig(c.env);
  const topk = parseTopK(c.req.query('topk'));
  // Resolved before the upload is read: an unknown concept is a 404 without any inference.
  const conceptsQuery = c.req.query('concepts');
  const concepts = shape === 'native' && conceptsQuery !== undefined ? parseConceptList(conceptsQuery) : undefined;
  const uploads = await readUploads(c.req, config.maxImages, config);
  const result = await classify(registryFor(c.env), modelId, uploads, {
    topk,
    limits: { maxPixels: config.maxPixels, maxMemoryMB: config.maxDecodeMB },
    deadlineMs: c.var.deadline,
    reserveMemory: (bytes) => c.var.admission.reserve(bytes, c.var.deadline),
    cache: requestCache(c),
  });
  const total = performance.now() - started;

  setAnswerHeaders(c, result, total);

  switch (shape) {
    case 'native':
      return c.json(nativeBody(result, total, concepts));
    case 'model-server':
      return c.json(single(result, (p) => p.map((x) => ({ class: `${x.synset} ${x.label}`, probability: x.probability }))));
    case 'torchserve':
      return c.json(single(result, (p) => Object.fromEntries(p.map((x) => [shortName(x.label), x.probability]))));
  }
}

/**
 * Server-Timing, and which model and weights produced the answer: the compatibility shapes have
 * no room for it in the body, so every answer says it in headers.
 */
export function setAnswerHeaders(c: Context, { timings, manifest, cache }: Classification, total: number): void {
  c.header(
    'Server-Timing',
    [
      `cache;dur=${ms(timings.cache)};desc="${cache}"`,
      `model;dur=${ms(timings.model)}`,
      `decode;dur=${ms(timings.decode)}`,
      `preprocess;dur=${ms(timings.preprocess)}`,
      `inference;dur=${ms(timings.inference)}`,
      `total;dur=${ms(total)}`,
    ].join(', '),
  );
  c.header('X-Model-Id', manifest.id);
  c.header('X-Model-Weights', manifest.weights);
  // A batch is a HIT only when every image was (src/pipeline/classify.ts).
  c.header('X-Cache', cache);
  if (manifest.weights === 'synthetic') c.header('Warning', `199 edge-resnet "${SYNTHETIC_NOTICE}"`);
}

/**
 * The result cache for a request (src/cache): its backing depends on the host the request came
 * in on, since the Cache API does nothing on *.workers.dev. Writes outlive the answer.
 */
export function requestCache<E extends { Bindings: Env }>(c: Context<E>): ResultCache | undefined {
  return resultCacheFor(c.env, (promise) => c.executionCtx.waitUntil(promise), new URL(c.req.url).hostname);
}

/** The compatibility servers answer one image with its result and a batch with a list of them. */
function single<T>({ images }: Classification, format: (p: Classification['images'][number]['predictions']) => T): T | T[] {
  const results = images.map((image) => format(image.predictions));
  return results.length === 1 ? results[0]! : results;
}

/** TorchServe's ImageNet index_to_name uses one name per class: the first synonym. */
const shortName = (label: string) => label.split(',')[0]!.trim();

function parseTopK(raw: string | undefined): number {
  if (raw === undefined) return 5;
  const k = Number(raw);
  if (!/^\d+$/.test(raw) || k < 1 || k > 1000) throw badRequest(`topk must be an integer from 1 to 1000, got "${raw.slice(0, 20)}"`);
  return k;
}

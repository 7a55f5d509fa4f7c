/**
 * The predict routes. One pipeline, four URL shapes, three answer shapes: `/predict` gives
 * the native answer; the model-server (`/<model>/predict`) and TorchServe (`/predictions/<model>`)
 * forms answer exactly as those servers do, so their existing clients keep working.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Admitted } from '../admission';
import { ms, nativeBody, SYNTHETIC_NOTICE } from '../answers';
import { resultCacheFor, type ResultCache } from '../cache';
import { getConfig } from '../config';
import { registryFor } from '../models/registry';
import {
  answerHeaders,
  errors,
  imageBody,
  ModelIdSchema,
  ModelServerAnswerSchema,
  PredictBodySchema,
  registerUploadSchemas,
  TorchServeAnswerSchema,
  validationHook,
} from '../openapi';
import { classify, type Classification } from '../pipeline/classify';
import { readUploads } from '../upload';
import { parseConceptList } from '../concepts';

type PredictEnv = { Bindings: Env; Variables: Admitted };

/** `?topk=`: how many classes each image's answer lists, best first. */
export const TopKSchema = z
  .string()
  .transform((raw, ctx) => {
    const k = Number(raw);
    if (/^\d+$/.test(raw) && k >= 1 && k <= 1000) return k;
    ctx.addIssue({ code: 'custom', message: `topk must be an integer from 1 to 1000, got "${raw.slice(0, 20)}"` });
    return z.NEVER;
  })
  .optional()
  .openapi({ type: 'integer', minimum: 1, maximum: 1000, default: 5, description: 'How many classes each answer lists, best first.' });

const ConceptsQuerySchema = z
  .string()
  .optional()
  .openapi({ description: 'Comma-separated concepts (WordNet lemmas or noun synset ids, at most 50) to score on every image; 404 for one that is not a concept.', example: 'dog,n04565375' });

/** Every status an image route can answer: what the body, the image, the model and the URL input can do. */
const IMAGE_ERRORS = errors(400, 401, 404, 413, 415, 422, 500, 502, 503, 504);

const answer = <S extends z.ZodType>(schema: S, description: string) => ({ description, headers: answerHeaders, content: { 'application/json': { schema } } });

const nativeRequest = { query: z.object({ topk: TopKSchema, concepts: ConceptsQuerySchema }), body: imageBody };
const modelParams = z.object({ model: ModelIdSchema });

const predictDefault = createRoute({
  method: 'post',
  path: '/predict',
  tags: ['predict'],
  summary: 'Classify with the default model',
  request: nativeRequest,
  responses: { 200: answer(PredictBodySchema, 'The top K classes of every image.'), ...IMAGE_ERRORS },
});

const predictModel = createRoute({
  method: 'post',
  path: '/predict/{model}',
  tags: ['predict'],
  summary: 'Classify with a model',
  request: { ...nativeRequest, params: modelParams },
  responses: { 200: answer(PredictBodySchema, 'The top K classes of every image.'), ...IMAGE_ERRORS },
});

const torchServe = createRoute({
  method: 'post',
  path: '/predictions/{model}',
  tags: ['predict'],
  summary: 'Classify, answered as TorchServe does',
  description: "TorchServe's inference API, so that its clients work unchanged: `{ label: probability }`.",
  request: { query: z.object({ topk: TopKSchema }), params: modelParams, body: imageBody },
  responses: { 200: answer(TorchServeAnswerSchema, "TorchServe's answer."), ...IMAGE_ERRORS },
});

const modelServer = createRoute({
  method: 'post',
  path: '/{model}/predict',
  tags: ['predict'],
  summary: 'Classify, answered as the model server does',
  description: "The model server's shape, so that its clients work unchanged: `[{ class, probability }]`.",
  request: { query: z.object({ topk: TopKSchema }), params: modelParams, body: imageBody },
  responses: { 200: answer(ModelServerAnswerSchema, "The model server's answer."), ...IMAGE_ERRORS },
});

const routes = new OpenAPIHono<PredictEnv>({ defaultHook: validationHook() });
registerUploadSchemas(routes.openAPIRegistry);

export const predictRoutes = routes
  .openapi(predictDefault, async (c) => {
    const { topk, concepts } = c.req.valid('query');
    return native(c, getConfig(c.env).defaultModel, topk, concepts);
  })
  .openapi(predictModel, async (c) => {
    const { topk, concepts } = c.req.valid('query');
    return native(c, c.req.valid('param').model, topk, concepts);
  })
  .openapi(torchServe, async (c) => {
    const { result } = await classifyRequest(c, c.req.valid('param').model, c.req.valid('query').topk);
    return c.json(single(result, (p) => Object.fromEntries(p.map((x) => [shortName(x.label), x.probability]))), 200);
  })
  .openapi(modelServer, async (c) => {
    const { result } = await classifyRequest(c, c.req.valid('param').model, c.req.valid('query').topk);
    return c.json(single(result, (p) => p.map((x) => ({ class: `${x.synset} ${x.label}`, probability: x.probability }))), 200);
  });

async function native(c: Context<PredictEnv>, modelId: string, topk: number | undefined, conceptsQuery: string | undefined) {
  // Resolved before the upload is read: an unknown concept is a 404 without any inference.
  const concepts = conceptsQuery !== undefined ? parseConceptList(conceptsQuery) : undefined;
  const { result, total } = await classifyRequest(c, modelId, topk);
  return c.json(nativeBody(result, total, concepts), 200);
}

/**
 * The request's images through the pipeline, with the answer headers set; the body is the
 * caller's (/predict's shapes, /moderate's). `started`: when the request's own work began, for
 * the total (moderate's policy lookup comes first).
 */
export async function classifyRequest(c: Context<PredictEnv>, modelId: string, topk = 5, started = performance.now()): Promise<{ result: Classification; total: number }> {
  const config = getConfig(c.env);
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
  return { result, total };
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

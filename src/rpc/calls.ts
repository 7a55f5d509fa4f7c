/**
 * The work behind the entrypoint's methods, as `POST /predict/:model` and `POST /moderate` do
 * it: the same admission (one slot of the isolate's MAX_IN_FLIGHT before the image is read,
 * decode memory metered), the same limits, the same pipeline and the same answer bodies.
 * A service binding is already authorised, so there is no API key here.
 */
import { moderateBody, nativeBody, type ModerateBody, type PredictBody } from '../answers';
import { isolateAdmission } from '../app';
import { resultCacheFor, type CacheStatus } from '../cache';
import { parseConceptList, type Concept } from '../concepts';
import { getConfig, type Config } from '../config';
import { badRequest } from '../errors';
import { registryFor } from '../models/registry';
import { classify, type Classification } from '../pipeline/classify';
import { inlinePolicy, loadPolicy, type ResolvedPolicy } from '../policies';
import { readImage } from './input';

/** What a call runs in: the entrypoint's env and execution context. */
export interface CallContext {
  env: Env;
  ctx: ExecutionContext;
}

/** An answer body and whether it came from the result cache (HTTP's X-Cache). */
export interface Answered<T> {
  body: T;
  cache: CacheStatus;
}

export async function classifyCall({ env, ctx }: CallContext, image: unknown, options: unknown): Promise<Answered<PredictBody>> {
  const started = performance.now();
  const config = getConfig(env);
  // Checked before any waiting or reading, as the routes check their query first.
  const { model, topk, concepts } = parseOptions(options, config);
  const result = await run(env, ctx, config, model, topk, image);
  return { body: nativeBody(result, performance.now() - started, concepts), cache: result.cache };
}

export async function moderateCall({ env, ctx }: CallContext, image: unknown, policy: unknown): Promise<Answered<ModerateBody>> {
  const started = performance.now();
  const config = getConfig(env);
  const resolved = await resolvePolicy(env, config, policy);
  const result = await run(env, ctx, config, config.defaultModel, 5, image);
  return { body: moderateBody(result, resolved, performance.now() - started), cache: result.cache };
}

/** Admission, the image, the pipeline: what the admit middleware and the routes do for HTTP. */
async function run(env: Env, ctx: ExecutionContext, config: Config, model: string, topk: number, image: unknown): Promise<Classification> {
  const deadline = Date.now() + config.requestTimeoutMs;
  const admission = isolateAdmission(config);
  const release = await admission.enter(deadline);
  try {
    const upload = await readImage(image, config);
    return await classify(registryFor(env), model, [upload], {
      topk,
      limits: { maxPixels: config.maxPixels, maxMemoryMB: config.maxDecodeMB },
      deadlineMs: deadline,
      reserveMemory: (bytes) => admission.reserve(bytes, deadline),
      // The same entries as HTTP's. No host: the name the caller reached us on is unknown.
      cache: resultCacheFor(env, (promise) => ctx.waitUntil(promise), undefined),
    });
  } finally {
    release();
  }
}

const OPTION_KEYS = new Set(['model', 'topk', 'concepts']);

function parseOptions(options: unknown, config: Config): { model: string; topk: number; concepts: Concept[] | undefined } {
  if (options === undefined || options === null) return { model: config.defaultModel, topk: 5, concepts: undefined };
  if (typeof options !== 'object' || Array.isArray(options)) throw badRequest('options must be an object: { model?, topk?, concepts? }');
  // A misspelt option silently ignored would answer something the caller did not ask for.
  const unknown = Object.keys(options).filter((k) => !OPTION_KEYS.has(k));
  if (unknown.length > 0) throw badRequest(`unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k.slice(0, 30)}"`).join(', ')}: the options are model, topk and concepts`);
  const { model, topk, concepts } = options as Record<string, unknown>;
  if (model !== undefined && (typeof model !== 'string' || model === '')) throw badRequest('option "model" must be a model id, e.g. "resnet18v1"');
  if (topk !== undefined && !(typeof topk === 'number' && Number.isInteger(topk) && topk >= 1 && topk <= 1000)) {
    throw badRequest(`topk must be an integer from 1 to 1000, got "${String(topk).slice(0, 20)}"`);
  }
  let resolved: Concept[] | undefined;
  if (concepts !== undefined) {
    if (!Array.isArray(concepts) || concepts.length === 0 || !concepts.every((c) => typeof c === 'string' && !c.includes(','))) {
      throw badRequest('option "concepts" must be a non-empty array of concepts (WordNet lemmas or noun synset ids), e.g. ["dog", "n04565375"]');
    }
    resolved = parseConceptList(concepts.join(','));
  }
  return { model: (model as string | undefined) ?? config.defaultModel, topk: (topk as number | undefined) ?? 5, concepts: resolved };
}

/** A stored policy by name, an inline one, or DEFAULT_POLICY, as `/moderate` chooses. */
async function resolvePolicy(env: Env, config: Config, policy: unknown): Promise<ResolvedPolicy> {
  if (typeof policy === 'string') return loadPolicy(env.MODELS, policy);
  if (typeof policy === 'object' && policy !== null) return inlinePolicy(policy);
  if (policy !== undefined && policy !== null) throw badRequest('policy must be a stored policy\'s name or a policy object { name, rules }');
  if (config.defaultPolicy === undefined) {
    throw badRequest('no policy: DEFAULT_POLICY is not set; pass a policy name or an inline policy to moderate()');
  }
  return loadPolicy(env.MODELS, config.defaultPolicy);
}

/**
 * Models served by Workers of their own (MODEL_WORKERS). With MAX_LOADED_MODELS = 1, mixed
 * traffic in one isolate recreates a session on every switch (~0.4 s for ResNet-50); a Worker
 * per model keeps each session warm. The front forwards the untouched request to the model's
 * Worker, which runs this same code with its own DEFAULT_MODEL (wrangler.model-*.toml) and so
 * answers the same API; the front neither reads the body nor takes an admission slot for it:
 * the model Worker's isolate has its own.
 */
import type { Context, Next } from 'hono';
import { getConfig } from '../../config';
import { modelUnavailable } from '../../errors';
import { REQUEST_ID_HEADER, requestIdOf } from '../request-log';

/**
 * The model a predict or moderate request runs, from its path, as the routes resolve it:
 * undefined for any other path. `/moderate/predict` is the policy "predict" (the moderate
 * routes come first), not a model "moderate".
 */
export function modelOfPath(path: string, defaultModel: string): string | undefined {
  const parts = path.split('/').slice(1);
  // Open Inference Protocol: /v2/models/<model>[/versions/<v>]/infer (src/routes/v2).
  if (parts[0] === 'v2' && parts[1] === 'models' && parts.at(-1) === 'infer' && (parts.length === 4 || (parts.length === 6 && parts[3] === 'versions'))) {
    return decoded(parts[2]!);
  }
  if (parts[0] === 'moderate' && parts.length <= 2) return defaultModel;
  if (parts.length === 1 && parts[0] === 'predict') return defaultModel;
  if (parts.length !== 2) return undefined;
  if (parts[0] === 'predict' || parts[0] === 'predictions') return decoded(parts[1]!);
  if (parts[1] === 'predict') return decoded(parts[0]!);
  return undefined;
}

/** As the router decodes a path parameter; an undecodable one is no model we route. */
function decoded(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * Forwards requests for a model listed in MODEL_WORKERS to its Worker; others go on here.
 * Generic over the app's variables, so that any app with Env bindings can register it.
 */
export const routeModel = async <E extends { Bindings: Env }>(c: Context<E>, next: Next): Promise<Response | void> => {
  const config = getConfig(c.env);
  if (config.modelWorkers.size === 0) return next();
  const model = modelOfPath(c.req.path, config.defaultModel);
  const binding = model === undefined ? undefined : config.modelWorkers.get(model);
  if (binding === undefined) return next();

  const culprit = `model ${model}: its Worker (${binding})`;
  const value: unknown = (c.env as unknown as Record<string, unknown>)[binding];
  if (typeof value !== 'object' || value === null || !('fetch' in value)) {
    // A deployment error: MODEL_WORKERS names a binding wrangler.toml does not declare.
    throw modelUnavailable(`${culprit} is not bound: MODEL_WORKERS names the service binding ${binding}, which this Worker lacks (see README, Deploying)`);
  }
  const timeoutMs = config.stageTimeoutMs;
  const started = performance.now();
  let res: Response;
  try {
    // A model Worker that hangs must not hold the request forever.
    res = await (value as Fetcher).fetch(withRequestId(c), { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    if (err instanceof Error && err.name === 'TimeoutError') {
      throw modelUnavailable(`${culprit} timed out after ${timeoutMs} ms (STAGE_TIMEOUT_MS)`, err);
    }
    throw modelUnavailable(`${culprit} is unreachable: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  // Its answer, errors included, is already in our API's shape. A copy, since a fetched
  // Response's headers are immutable and CORS still adds its own.
  const answer = new Response(res.body, res);
  // The model Worker's Server-Timing covers its own work; this adds the hop to it.
  answer.headers.append('Server-Timing', `forward;desc="${binding}";dur=${(performance.now() - started).toFixed(1)}`);
  return answer;
};

/** The request as received, with this request's id, so the model Worker logs under the same one. */
function withRequestId(c: Context): Request {
  const id = requestIdOf(c);
  if (id === undefined || c.req.header(REQUEST_ID_HEADER) === id) return c.req.raw;
  const headers = new Headers(c.req.raw.headers);
  headers.set(REQUEST_ID_HEADER, id);
  return new Request(c.req.raw, { headers });
}

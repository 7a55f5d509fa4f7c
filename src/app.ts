import { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { admissionFor, uploadBytes, type Admission, type Admitted } from './admission';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { drainUnreadBody } from './middleware/drain';
import { getConfig, type Config } from './config';
import { ApiError, errorResponse, notFound, tooLarge } from './errors';
import { apiKey } from './middleware/auth';
import { requestLog, REQUEST_ID_HEADER, type RequestLogVariables } from './middleware/request-log';
import { routeModel } from './middleware/route-model';
import { DOC_METHODS, DOC_PATHS, docRoutes, validationHook } from './openapi';
import { decoderMemoryBytes } from './image';
import { isolateHeapBytes } from './models/registry';
import { modelRoutes } from './routes/models';
import { pingRoutes } from './routes/ping';
import { predictRoutes } from './routes/predict';
import { conceptRoutes } from './routes/concepts';
import { moderateRoutes } from './routes/moderate';
import { policyRoutes } from './routes/policies';
import { jobRoutes } from './routes/jobs';
import { isV2Path, v2ErrorResponse, v2Routes, V2_METHODS, V2_OPEN_PATHS } from './routes/v2';

/** Paths and the methods they answer, for 405s with an Allow header. */
const METHODS: Array<[path: string, allow: string]> = [
  ['/ping', 'GET'],
  ['/models', 'GET'],
  ['/models/:model', 'GET'],
  ['/predict', 'POST'],
  ['/predict/:model', 'POST'],
  ['/concepts', 'GET'],
  ['/policies', 'GET'],
  ['/policies/:name', 'GET'],
  ['/jobs', 'POST'],
  ['/jobs/:id', 'GET'],
  ['/moderate', 'POST'],
  ['/moderate/:policy', 'POST'],
  ['/predictions/:model', 'POST'],
  ['/:model/predict', 'POST'],
  ...V2_METHODS,
  ...DOC_METHODS,
];

type AppEnv = { Bindings: Env; Variables: Admitted & RequestLogVariables };

export function createApp() {
  // OpenAPIHono: the routes' documented schemas gather here, for GET /openapi.json (src/openapi).
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook() });

  // First, so that every answer (CORS preflights, 401s, 404s included) has an id and a log line.
  app.use('*', requestLog());
  // Answers given before the upload was read (503 busy, 401, 404, ...) wait for the rest of it,
  // so that the client can read them and its connection stays usable (src/middleware/drain).
  app.use(
    '*',
    drainUnreadBody({
      maxBytes: (c) => getConfig(c.env).maxBodyBytes,
      timeoutMs: (c) => getConfig(c.env).requestTimeoutMs,
    }),
  );
  app.use(
    '*',
    cors({
      // Off unless CORS_ORIGINS lists origins: returning null sends no Access-Control-Allow-Origin,
      // so browsers refuse cross-origin reads (hono still adds Access-Control-Expose-Headers, harmless).
      origin: (origin, c) => (getConfig(c.env).corsOrigins.includes(origin) ? origin : null),
      allowMethods: ['GET', 'POST'],
      // Inference-Header-Content-Length: the v2 binary tensor extension's, both ways (src/routes/v2).
      allowHeaders: ['Authorization', 'X-API-Key', 'Content-Type', 'Inference-Header-Content-Length', REQUEST_ID_HEADER],
      exposeHeaders: ['Server-Timing', 'X-Model-Id', 'X-Model-Weights', 'Warning', 'X-Cache', 'Inference-Header-Content-Length', 'Retry-After', REQUEST_ID_HEADER],
      maxAge: 600,
    }),
  );
  // Health checks stay open so load balancers need no secret; the API's description (src/openapi) so tools need none.
  app.use('*', async (c, next) => (c.req.path === '/ping' || V2_OPEN_PATHS.has(c.req.path) || DOC_PATHS.has(c.req.path) ? next() : auth(c, next)));
  // Models with a Worker of their own (MODEL_WORKERS) go there before any body or slot is taken here.
  app.on('POST', ['/predict', '/predict/*', '/predictions/*', '/:model/predict', '/moderate', '/moderate/*'], routeModel, limitBody, admit);

  app.route('/', pingRoutes);
  app.route('/', modelRoutes);
  // Before predict: `/:model/predict` would take `POST /moderate/predict` (a policy named predict).
  app.route('/', moderateRoutes);
  app.route('/', predictRoutes);
  app.route('/', conceptRoutes);
  app.route('/', policyRoutes);
  // Its own small body limit, and no admission slot: posting a job does no image work.
  app.route('/', jobRoutes);
  // Open Inference Protocol (KServe v2): inference under the same body limit and admission as /predict.
  app.on('POST', '/v2/models/*', routeModel, limitBody, admit);
  app.route('/', v2Routes);
  // GET /openapi.json and GET /docs: the document of every route mounted on `app`.
  app.route('/', docRoutes(app));

  for (const [path, allow] of METHODS) {
    app.all(path, (c) => {
      c.header('Allow', allow);
      throw new ApiError('method_not_allowed', `${c.req.method} is not allowed here; use ${allow}`);
    });
  }

  app.notFound((c) => {
    throw notFound(`no route for ${c.req.method} ${c.req.path}`);
  });

  // The v2 protocol has an error shape of its own (src/routes/v2).
  app.onError((err, c) => (isV2Path(c.req.path) ? v2ErrorResponse(err, c) : errorResponse(err, c)));

  return app;
}

const auth = apiKey({ key: (c) => getConfig(c.env).apiKey });

/**
 * A slot among MAX_IN_FLIGHT before any work (reading the body included), or a fast 503 with
 * Retry-After; the slot is held until the answer is ready. Routes find the isolate's
 * Admission (for decode memory) and the request's deadline in the context.
 */
const admit: MiddlewareHandler<AppEnv> = async (c, next) => {
  // One request may meet this middleware twice (`/predict/*` also matches `/predict`, and
  // `/moderate/predict` is also `/:model/predict`): it is admitted once.
  if (c.var.deadline !== undefined) return next();
  const config = getConfig(c.env);
  const deadline = Date.now() + config.requestTimeoutMs;
  c.set('deadline', deadline);
  const admission = isolateAdmission(config);
  const release = await admission.enter(deadline);
  let releaseUpload: (() => void) | undefined;
  try {
    const upload = uploadBytes(c.req.header('Content-Type'), c.req.header('Content-Length'), config.maxBodyBytes);
    // A body of unannounced length (chunked) is held to the body limit while read; it reserves
    // one slot's share of half the room (the other half is for decoding), not the limit, which
    // would shut everyone else out.
    const share = Math.floor(admission.room / (2 * config.maxInFlight));
    releaseUpload = await admission.reserveUpload(upload.announced ? upload.bytes : Math.min(upload.bytes, share), deadline);
    c.set('admission', admission);
    await next();
  } finally {
    releaseUpload?.();
    release();
  }
};

/**
 * The isolate's one Admission for `config`: HTTP requests and RPC calls (src/rpc) share its
 * slots and decode memory, since they share the isolate's 128 MB.
 */
export function isolateAdmission(config: Config): Admission {
  return admissionFor(config, () => ({
    maxInFlight: config.maxInFlight,
    budgetBytes: config.memoryBudgetMB * 1024 * 1024,
    waitMs: config.admissionWaitMs,
    // What stays allocated between requests: onnxruntime's heap and the WebP decoder's memory.
    baseline: () => (isolateHeapBytes() ?? 0) + decoderMemoryBytes(),
  }));
}

/** The body limit comes from the environment, so the middleware is made once per config. */
const bodyLimits = new WeakMap<Config, MiddlewareHandler>();
const limitBody: MiddlewareHandler<AppEnv> = (c, next) => {
  const config = getConfig(c.env);
  let limit = bodyLimits.get(config);
  if (!limit) {
    limit = bodyLimit({
      maxSize: config.maxBodyBytes,
      onError: () => {
        throw tooLarge(`request body over ${config.maxBodyBytes} bytes`);
      },
    });
    bodyLimits.set(config, limit);
  }
  return limit(c, next);
};

/**
 * The Open Inference Protocol (KServe v2, as Triton serves it), so that Triton and KServe
 * clients work unchanged: server and model metadata, health, and inference. A model takes one
 * of two inputs: `image` (BYTES, encoded images: the same pipeline as /predict, result cache
 * included) or the model's own input (FP32 [N,3,224,224], already normalized: straight to the
 * model). Extensions: Triton's binary tensor data and classification.
 *
 * Errors are the protocol's `{ "error": "..." }` with our status codes; see `v2ErrorResponse`.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { version as serverVersion } from '../../../package.json';
import type { Admitted } from '../../admission';
import { SYNTHETIC_NOTICE } from '../../answers';
import { getConfig } from '../../config';
import { badRequest, errorResponse, notFound, tooLarge } from '../../errors';
import type { ModelManifest } from '../../models/manifest';
import { registryFor, type ModelRegistry } from '../../models/registry';
import { classify, type Classification } from '../../pipeline/classify';
import { classifyTensor } from '../../pipeline/tensor';
import {
  answerHeaders,
  OPEN,
  V2InferenceRequestSchema,
  V2ErrorSchema,
  V2InferenceResponseSchema,
  V2LiveSchema,
  V2ModelMetadataSchema,
  V2ModelParamsSchema,
  V2ModelReadySchema,
  V2ServerMetadataSchema,
  V2ServerReadySchema,
  V2VersionParamsSchema,
  v2Errors,
  validationHook,
} from '../../openapi';
import { requestCache, setAnswerHeaders } from '../predict';
import { bytesElements, elements, fp32Values, HEADER_LENGTH, readRequest, type ReadInput } from './request';
import { inferResponse, requestedOutputs } from './response';

type V2Env = { Bindings: Env; Variables: Admitted };
type V2Context = Context<V2Env>;

/** The BYTES input's name: encoded images (JPEG, PNG, WebP, GIF), one per element. */
export const IMAGE_INPUT = 'image';

const EXTENSIONS = ['binary_tensor_data', 'classification'];

/** Paths and methods, for the app's 405s (src/app.ts METHODS). */
export const V2_METHODS: Array<[path: string, allow: string]> = [
  ['/v2', 'GET'],
  ['/v2/health/live', 'GET'],
  ['/v2/health/ready', 'GET'],
  ['/v2/models/:model', 'GET'],
  ['/v2/models/:model/ready', 'GET'],
  ['/v2/models/:model/infer', 'POST'],
  ['/v2/models/:model/versions/:version', 'GET'],
  ['/v2/models/:model/versions/:version/ready', 'GET'],
  ['/v2/models/:model/versions/:version/infer', 'POST'],
];

/** Health checks stay open (as /ping), so that probes need no API key. */
export const V2_OPEN_PATHS: ReadonlySet<string> = new Set(['/v2/health/live', '/v2/health/ready']);

export const isV2Path = (path: string): boolean => path === '/v2' || path.startsWith('/v2/');

const json = <S extends z.ZodType>(schema: S, description: string) => ({ description, content: { 'application/json': { schema } } });

const weightHeaderDocs = {
  'X-Model-Id': answerHeaders['X-Model-Id'],
  'X-Model-Weights': answerHeaders['X-Model-Weights'],
  Warning: answerHeaders.Warning,
};

const serverMetadata = createRoute({
  method: 'get',
  path: '/v2',
  tags: ['v2'],
  summary: 'Server metadata',
  responses: { 200: json(V2ServerMetadataSchema, 'Name, version and the extensions served.'), ...v2Errors(401, 500) },
});

const live = createRoute({
  method: 'get',
  path: '/v2/health/live',
  tags: ['v2', 'health'],
  summary: 'Server liveness',
  ...OPEN,
  responses: { 200: json(V2LiveSchema, 'Live.'), ...v2Errors(500) },
});

const ready = createRoute({
  method: 'get',
  path: '/v2/health/ready',
  tags: ['v2', 'health'],
  summary: 'Server readiness',
  description: 'Ready when the default model is in the bucket, as /ping says Healthy.',
  ...OPEN,
  responses: { 200: json(V2ServerReadySchema, 'Ready.'), 503: json(V2ServerReadySchema, 'Not ready, with the reason.'), ...v2Errors(500) },
});

const MODEL_ERRORS = v2Errors(401, 404, 500, 503);

const metadataRoute = (path: '/v2/models/{model}' | '/v2/models/{model}/versions/{version}') =>
  createRoute({
    method: 'get',
    path,
    tags: ['v2'],
    summary: path.includes('versions') ? 'Model metadata (a version)' : 'Model metadata',
    description: 'Two inputs, of which a request sends one: `image` (BYTES, encoded images) or the model\'s own (FP32 [N,3,224,224], normalized).',
    request: { params: path.includes('versions') ? V2VersionParamsSchema : V2ModelParamsSchema },
    responses: { 200: { ...json(V2ModelMetadataSchema, 'The model.'), headers: weightHeaderDocs }, ...MODEL_ERRORS },
  });

const readyRoute = (path: '/v2/models/{model}/ready' | '/v2/models/{model}/versions/{version}/ready') =>
  createRoute({
    method: 'get',
    path,
    tags: ['v2'],
    summary: path.includes('versions') ? 'Model readiness (a version)' : 'Model readiness',
    description: 'Ready when its files are in the bucket: its session is created on first use.',
    request: { params: path.includes('versions') ? V2VersionParamsSchema : V2ModelParamsSchema },
    responses: {
      200: json(V2ModelReadySchema, 'Ready.'),
      // Not ready as the protocol says it, or (as any model route) its manifest unreadable.
      503: json(z.union([V2ModelReadySchema, V2ErrorSchema]), 'Not ready: its files are not in the bucket; or `{ error }` when its manifest cannot be read.'),
      ...v2Errors(401, 404, 500),
    },
  });

const inferRoute = (path: '/v2/models/{model}/infer' | '/v2/models/{model}/versions/{version}/infer') =>
  createRoute({
    method: 'post',
    path,
    tags: ['v2'],
    summary: path.includes('versions') ? 'Inference (a version)' : 'Inference',
    description:
      'The input `image` (BYTES: encoded images, base64 strings in JSON) runs the same pipeline as /predict, result cache included; the model\'s own FP32 input goes straight to the model. Extensions: binary tensor data (`Inference-Header-Content-Length`) and classification (output parameter `classification`: top K).',
    request: {
      params: path.includes('versions') ? V2VersionParamsSchema : V2ModelParamsSchema,
      // Read by the route (./request.ts) from the raw bytes, which may carry binary tensors after
      // the JSON: documented by $ref, so that no validator parses the body first.
      body: {
        required: true,
        description: 'The inference request; with binary tensor data, the JSON part then the tensors\' bytes (Inference-Header-Content-Length: the JSON part\'s length). At most MAX_BODY_BYTES.',
        content: {
          'application/json': { schema: { $ref: '#/components/schemas/V2InferenceRequest' } },
          'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
        },
      },
    },
    responses: {
      200: {
        description: 'The outputs, in JSON or (binary tensor data) the JSON part then the tensors\' bytes.',
        headers: { ...answerHeaders, [HEADER_LENGTH]: { description: 'With binary outputs: the JSON part\'s length.', schema: { type: 'integer' } } },
        content: {
          'application/json': { schema: V2InferenceResponseSchema },
          'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
        },
      },
      ...v2Errors(400, 401, 404, 413, 415, 422, 500, 503, 504),
    },
  });

const routes = new OpenAPIHono<V2Env>({ defaultHook: validationHook() });
routes.openAPIRegistry.register('V2InferenceRequest', V2InferenceRequestSchema);

export const v2Routes = routes
  .openapi(serverMetadata, (c) => c.json({ name: 'edge-resnet', version: serverVersion, extensions: EXTENSIONS }, 200))
  .openapi(live, (c) => c.json({ live: true }, 200))
  .openapi(ready, serverReady)
  .openapi(metadataRoute('/v2/models/{model}'), (c) => metadata(c))
  .openapi(metadataRoute('/v2/models/{model}/versions/{version}'), (c) => metadata(c))
  .openapi(readyRoute('/v2/models/{model}/ready'), (c) => modelReady(c))
  .openapi(readyRoute('/v2/models/{model}/versions/{version}/ready'), (c) => modelReady(c))
  .openapi(inferRoute('/v2/models/{model}/infer'), (c) => infer(c))
  .openapi(inferRoute('/v2/models/{model}/versions/{version}/infer'), (c) => infer(c));

/**
 * The protocol's error object, `{ "error": message }`, in place of our `{ code, type, message }`
 * for every /v2 path (the middleware's refusals included: 401, 413, 503 overloaded). The status
 * and message are those the rest of the API gives for the same failure, Retry-After included,
 * and a bug is the same opaque "internal error" (its details logged, never sent).
 */
export async function v2ErrorResponse(err: Error, c: Context): Promise<Response> {
  const ours = errorResponse(err, c);
  const { message } = (await ours.json()) as { message: string };
  return c.json({ error: message }, ours.status as ContentfulStatusCode);
}

/** Ready when the default model is in R2, as /ping says Healthy; 503 with the reason otherwise. */
async function serverReady(c: V2Context) {
  const config = getConfig(c.env);
  let reason: string | undefined;
  try {
    if (!(await registryFor(c.env).available(config.defaultModel))) reason = `default model ${config.defaultModel} is not in the bucket`;
  } catch (err) {
    reason = `default model ${config.defaultModel}: ${err instanceof Error ? err.message : 'unreachable'}`;
  }
  return reason ? c.json({ ready: false, reason }, 503) : c.json({ ready: true }, 200);
}

async function metadata(c: V2Context) {
  const { manifest, version } = await modelOf(c);
  weightHeaders(c, manifest);
  const [, channels, height, width] = manifest.input.shape;
  return c.json({
    name: manifest.id,
    versions: [version],
    platform: 'onnx',
    // Two ways in; a request sends exactly one of them. The batch is free either way (-1).
    inputs: [
      { name: IMAGE_INPUT, datatype: 'BYTES', shape: [-1] },
      { name: manifest.input.name, datatype: 'FP32', shape: [-1, channels, height, width] },
    ],
    outputs: [{ name: manifest.output.name, datatype: 'FP32', shape: [-1, manifest.output.shape[1]] }],
  }, 200);
}

/** A model is ready when its files are in R2: its session is created on first use. */
async function modelReady(c: V2Context) {
  const { manifest } = await modelOf(c);
  const ready = await registryFor(c.env).available(manifest.id);
  return ready ? c.json({ name: manifest.id, ready }, 200) : c.json({ name: manifest.id, ready }, 503);
}

async function infer(c: V2Context): Promise<Response> {
  const started = performance.now();
  const config = getConfig(c.env);
  const registry = registryFor(c.env);
  // Before the body is read: an unknown model is a 404 without reading a byte of it.
  const { manifest, version } = await modelOf(c, registry);
  const request = readRequest(new Uint8Array(await c.req.arrayBuffer()), c.req.header(HEADER_LENGTH));
  const outputs = requestedOutputs(request, manifest);
  const [input, ...more] = request.inputs;
  if (!input || more.length > 0) throw badRequest(`send exactly one input, got ${request.inputs.length}: ${inputsHelp(manifest)}`);
  const topk = Math.max(1, ...outputs.map((o) => o.classification ?? 1));

  let result: Classification;
  if (input.name === IMAGE_INPUT) {
    result = await classify(registry, manifest.id, images(input, config.maxImages), {
      topk,
      limits: { maxPixels: config.maxPixels, maxMemoryMB: config.maxDecodeMB },
      deadlineMs: c.var.deadline,
      reserveMemory: (bytes) => c.var.admission.reserve(bytes, c.var.deadline),
      cache: requestCache(c),
    });
  } else if (input.name === manifest.input.name) {
    result = await tensor(c, registry, manifest, input, topk, config.maxImages);
  } else {
    throw badRequest(`unknown input "${input.name.slice(0, 64)}": ${inputsHelp(manifest)}`);
  }

  setAnswerHeaders(c, result, performance.now() - started);
  const { body, headers } = inferResponse(result, request, outputs, version);
  return c.body(body as Uint8Array<ArrayBuffer>, 200, headers);
}

const inputsHelp = (m: ModelManifest) =>
  `"${IMAGE_INPUT}" (BYTES, encoded images) or "${m.input.name}" (FP32 [N,${m.input.shape.slice(1).join(',')}], normalized)`;

/** The BYTES input's images as uploads, at most MAX_IMAGES of them. */
function images(input: ReadInput, maxImages: number) {
  if (input.datatype !== 'BYTES') throw badRequest(`input "${IMAGE_INPUT}" must be BYTES, got ${input.datatype.slice(0, 16)}`);
  const bytes = bytesElements(input);
  const count = bytes.length;
  if (count === 0 || elements(input.shape) !== count || input.shape[0] !== count) {
    throw badRequest(`input "${IMAGE_INPUT}" has ${count} elements, its shape [${input.shape.join(',')}] says ${elements(input.shape)}: use [N] or [N,1]`);
  }
  if (count > maxImages) throw tooLarge(`too many images: ${count}, the limit is ${maxImages}`);
  return bytes.map((b, i) => ({ name: `${IMAGE_INPUT}[${i}]`, bytes: b }));
}

/** The FP32 input, counted against the isolate's memory while it is held, run as it is. */
async function tensor(c: V2Context, registry: ModelRegistry, manifest: ModelManifest, input: ReadInput, topk: number, maxImages: number): Promise<Classification> {
  if (input.datatype !== 'FP32') throw badRequest(`input "${manifest.input.name}" must be FP32, got ${input.datatype.slice(0, 16)}`);
  const batch = input.shape[0] ?? 0;
  if (batch > maxImages) throw tooLarge(`too many images: ${batch}, the limit is ${maxImages}`);
  const data = fp32Values(input, elements(input.shape));
  const release = await c.var.admission.reserve(data.byteLength, c.var.deadline);
  try {
    return await classifyTensor(registry, manifest.id, { data, dims: input.shape }, { topk, deadlineMs: c.var.deadline });
  } finally {
    release();
  }
}

/**
 * The path's model: the manifest of its loaded session if any (no R2 read), else R2's (404 for
 * an unknown model, 503 for one not uploaded), and the version asked for in the path, if any.
 */
async function modelOf(c: V2Context, registry = registryFor(c.env)): Promise<{ manifest: ModelManifest; version: string }> {
  const id = c.req.param('model') ?? '';
  const manifest = registry.loaded().find((m) => m.manifest.id === id)?.manifest ?? (await registry.manifest(id));
  const version = modelVersion(manifest);
  const asked = c.req.param('version');
  if (asked !== undefined && asked !== version) throw notFound(`model ${id} has no version "${asked.slice(0, 64)}" (it has "${version}")`);
  return { manifest, version };
}

/** The model's version: its weights file's hash, shortened. A model uploaded again gets a new one. */
const modelVersion = (m: ModelManifest): string => m.sha256.slice(0, 12);

function weightHeaders(c: V2Context, manifest: ModelManifest): void {
  c.header('X-Model-Id', manifest.id);
  c.header('X-Model-Weights', manifest.weights);
  if (manifest.weights === 'synthetic') c.header('Warning', `199 edge-resnet "${SYNTHETIC_NOTICE}"`);
}

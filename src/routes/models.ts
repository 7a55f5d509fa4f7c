import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { getConfig } from '../config';
import { isolateHeapBytes, registryFor, type LoadedModel } from '../models/registry';
import { errors, ModelDetailSchema, ModelIdSchema, ModelListSchema, validationHook } from '../openapi';

const list = createRoute({
  method: 'get',
  path: '/models',
  tags: ['catalogue'],
  summary: 'Models in the bucket',
  description: 'Every model in the bucket (one whose manifest cannot be read is listed as unavailable, with why), and what this isolate has loaded.',
  responses: {
    200: { description: 'The models.', content: { 'application/json': { schema: ModelListSchema } } },
    ...errors(401, 500),
  },
});

const one = createRoute({
  method: 'get',
  path: '/models/{model}',
  tags: ['catalogue'],
  summary: 'A model and its manifest',
  request: { params: z.object({ model: ModelIdSchema }) },
  responses: {
    200: { description: 'The model.', content: { 'application/json': { schema: ModelDetailSchema } } },
    ...errors(401, 404, 500, 503),
  },
});

/** What is in the bucket, and what this isolate has loaded. */
export const modelRoutes = new OpenAPIHono<{ Bindings: Env }>({ defaultHook: validationHook() })
  .openapi(list, async (c) => {
    const config = getConfig(c.env);
    const registry = registryFor(c.env);
    const loaded = new Map(registry.loaded().map((m) => [m.manifest.id, m]));
    const models = await registry.list();
    return c.json({
      default: config.defaultModel,
      // What this isolate's models cost against its 128 MB (the heap never shrinks).
      isolate: { wasmHeapBytes: isolateHeapBytes() ?? 0 },
      models: models.map(({ id, manifest, error }) =>
        manifest ? summary(manifest, loaded.get(id)) : { id, available: false as const, error },
      ),
    }, 200);
  })
  .openapi(one, async (c) => {
    const config = getConfig(c.env);
    const registry = registryFor(c.env);
    const id = c.req.valid('param').model;
    const manifest = await registry.manifest(id);
    const loaded = registry.loaded().find((m) => m.manifest.id === id);
    return c.json({ ...summary(manifest, loaded), default: id === config.defaultModel, manifest }, 200);
  });

function summary(manifest: LoadedModel['manifest'], loaded: LoadedModel | undefined) {
  return {
    id: manifest.id,
    available: true as const,
    version: manifest.version,
    depth: manifest.depth,
    precision: manifest.precision,
    weights: manifest.weights,
    input: manifest.input,
    bytes: manifest.bytes,
    // Split models (README, Models) run stage 0 here and the others in their own Workers.
    stages: manifest.stages?.length ?? 1,
    loaded: loaded ? { loadedAt: loaded.loadedAt, loadMs: loaded.loadMs, ...(loaded.remote ? { isolates: isolates(loaded) } : {}) } : (false as const),
  };
}

/** Where each stage of a loaded split model runs, and the onnxruntime heap each isolate last reported. */
function isolates(loaded: LoadedModel) {
  return [
    { stage: 0, isolate: 'this', wasmHeapBytes: isolateHeapBytes() },
    ...(loaded.remote ?? []).map((r) => ({ stage: r.stage, isolate: r.binding, wasmHeapBytes: r.wasmHeapBytes })),
  ];
}

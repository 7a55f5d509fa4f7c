import { Hono } from 'hono';
import { getConfig } from '../config';
import { getRegistry, type LoadedModel } from '../models/registry';

/** What is in the bucket, and what this isolate has loaded. */
export const modelRoutes = new Hono<{ Bindings: Env }>()
  .get('/models', async (c) => {
    const config = getConfig(c.env);
    const registry = getRegistry(c.env.MODELS, config.maxLoadedModels);
    const loaded = new Map(registry.loaded().map((m) => [m.manifest.id, m]));
    const models = await registry.list();
    return c.json({
      default: config.defaultModel,
      models: models.map(({ id, manifest, error }) =>
        manifest ? summary(manifest, loaded.get(id)) : { id, available: false, error },
      ),
    });
  })
  .get('/models/:model', async (c) => {
    const config = getConfig(c.env);
    const registry = getRegistry(c.env.MODELS, config.maxLoadedModels);
    const id = c.req.param('model');
    const manifest = await registry.manifest(id);
    const loaded = registry.loaded().find((m) => m.manifest.id === id);
    return c.json({ ...summary(manifest, loaded), default: id === config.defaultModel, manifest });
  });

function summary(manifest: LoadedModel['manifest'], loaded: LoadedModel | undefined) {
  return {
    id: manifest.id,
    available: true,
    version: manifest.version,
    depth: manifest.depth,
    precision: manifest.precision,
    weights: manifest.weights,
    input: manifest.input,
    bytes: manifest.bytes,
    loaded: loaded ? { loadedAt: loaded.loadedAt, loadMs: loaded.loadMs } : false,
  };
}

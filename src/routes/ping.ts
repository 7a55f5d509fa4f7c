import { Hono } from 'hono';
import { getConfig } from '../config';
import { registryFor } from '../models/registry';

/** Health check in TorchServe's shape: healthy when the default model is reachable in R2. */
export const pingRoutes = new Hono<{ Bindings: Env }>().get('/ping', async (c) => {
  const config = getConfig(c.env);
  const registry = registryFor(c.env);
  let reason: string | undefined;
  try {
    if (!(await registry.available(config.defaultModel))) reason = `default model ${config.defaultModel} is not in the bucket`;
  } catch (err) {
    reason = `default model ${config.defaultModel}: ${err instanceof Error ? err.message : 'unreachable'}`;
  }
  return reason ? c.json({ status: 'Unhealthy', reason }, 503) : c.json({ status: 'Healthy' });
});

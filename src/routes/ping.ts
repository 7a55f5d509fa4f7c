import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { getConfig } from '../config';
import { registryFor } from '../models/registry';
import { errors, OPEN, PingSchema, validationHook } from '../openapi';

const route = createRoute({
  method: 'get',
  path: '/ping',
  tags: ['health'],
  summary: 'Health check',
  description: "TorchServe's shape. Open: load balancers need no key.",
  ...OPEN,
  responses: {
    200: { description: 'Healthy: the default model is in the bucket.', content: { 'application/json': { schema: PingSchema } } },
    503: { description: 'Unhealthy, with the reason.', content: { 'application/json': { schema: PingSchema } } },
    ...errors(500),
  },
});

/** Health check in TorchServe's shape: healthy when the default model is reachable in R2. */
export const pingRoutes = new OpenAPIHono<{ Bindings: Env }>({ defaultHook: validationHook() }).openapi(route, async (c) => {
  const config = getConfig(c.env);
  const registry = registryFor(c.env);
  let reason: string | undefined;
  try {
    if (!(await registry.available(config.defaultModel))) reason = `default model ${config.defaultModel} is not in the bucket`;
  } catch (err) {
    reason = `default model ${config.defaultModel}: ${err instanceof Error ? err.message : 'unreachable'}`;
  }
  return reason ? c.json({ status: 'Unhealthy' as const, reason }, 503) : c.json({ status: 'Healthy' as const }, 200);
});

/**
 * A stage Worker (wrangler.stage-<k>.toml): runs one stage of split models for the front
 * Worker, over a service binding. It has no public route (workers_dev = false), so it needs
 * no API key: only Workers bound to it can call it.
 *
 *   POST /models/:model/stages/:stage   tensor in (src/stages/wire.ts), tensor out; the stage
 *                                       file's sha256 in X-Stage-Sha256
 *   GET  /ping
 */
import { Hono } from 'hono';
import { getConfig } from '../config';
import { badRequest, errorResponse, notFound } from '../errors';
import { isolateHeapBytes, registryFor } from '../models/registry';
import { HEAP_HEADER, readTensor, tensorBody, tensorHeaders, VERSION_HEADER } from './wire';

export function createStageApp() {
  const app = new Hono<{ Bindings: Env }>();

  app.post('/models/:model/stages/:stage{[0-9]+}', async (c) => {
    const id = c.req.param('model');
    const stage = Number(c.req.param('stage'));
    const sha256 = c.req.header(VERSION_HEADER);
    if (!sha256) throw badRequest(`${VERSION_HEADER} is missing: which version of stage ${stage} of ${id}?`);
    const output = await registryFor(c.env).useStage(id, stage, sha256, async ({ manifest, session }) => {
      const spec = manifest.stages![stage]!;
      return session.run(await readTensor(c.req.raw, spec.input, getConfig(c.env).maxImages));
    });
    return new Response(tensorBody(output), { headers: { ...tensorHeaders(output), [HEAP_HEADER]: String(isolateHeapBytes() ?? 0) } });
  });

  app.get('/ping', (c) => c.json({ status: 'Healthy', role: 'stage' }));

  app.notFound((c) => {
    throw notFound(`no route for ${c.req.method} ${c.req.path}`);
  });
  app.onError(errorResponse);
  return app;
}


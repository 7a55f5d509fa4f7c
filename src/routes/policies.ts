/**
 * `GET /policies` and `GET /policies/:name`: the named policies in the MODELS bucket. They are
 * written by the models CLI (`npm run models -- policy put`), never over HTTP.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { listPolicies, loadPolicy } from '../policies';
import { errors, PolicyDetailSchema, PolicyListSchema, PolicyNameSchema, validationHook } from '../openapi';

const list = createRoute({
  method: 'get',
  path: '/policies',
  tags: ['catalogue'],
  summary: 'Stored policies',
  responses: {
    200: { description: 'Their names, sorted.', content: { 'application/json': { schema: PolicyListSchema } } },
    ...errors(401, 500),
  },
});

const one = createRoute({
  method: 'get',
  path: '/policies/{name}',
  tags: ['catalogue'],
  summary: 'A stored policy',
  request: { params: z.object({ name: PolicyNameSchema }) },
  responses: {
    200: { description: 'The policy, each rule with the concept it resolved to.', content: { 'application/json': { schema: PolicyDetailSchema } } },
    ...errors(400, 401, 404, 500),
  },
});

export const policyRoutes = new OpenAPIHono<{ Bindings: Env }>({ defaultHook: validationHook() })
  .openapi(list, async (c) => c.json({ policies: await listPolicies(c.env.MODELS) }, 200))
  .openapi(one, async (c) => {
    const { policy, sha256, rules } = await loadPolicy(c.env.MODELS, c.req.valid('param').name);
    return c.json(
      {
        name: policy.name,
        sha256,
        // Each rule as written, with the concept it resolved to.
        rules: policy.rules.map((rule, i) => {
          const { id, name, gloss, classes } = rules[i]!.concept;
          return { ...rule, resolved: { id, name, gloss, classes: classes.length } };
        }),
      },
      200,
    );
  });

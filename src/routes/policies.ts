/**
 * `GET /policies` and `GET /policies/:name`: the named policies in the MODELS bucket. They are
 * written by the models CLI (`npm run models -- policy put`), never over HTTP.
 */
import { Hono } from 'hono';
import { listPolicies, loadPolicy } from '../policies';

export const policyRoutes = new Hono<{ Bindings: Env }>()
  .get('/policies', async (c) => c.json({ policies: await listPolicies(c.env.MODELS) }))
  .get('/policies/:name', async (c) => {
    const { policy, sha256, rules } = await loadPolicy(c.env.MODELS, c.req.param('name'));
    return c.json({
      name: policy.name,
      sha256,
      // Each rule as written, with the concept it resolved to.
      rules: policy.rules.map((rule, i) => {
        const { id, name, gloss, classes } = rules[i]!.concept;
        return { ...rule, resolved: { id, name, gloss, classes: classes.length } };
      }),
    });
  });

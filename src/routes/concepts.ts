/** `GET /concepts?q=<lemma or id>`: what a concept name resolves to, and the ImageNet classes under it. */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { describeConcept, findConcept } from '../concepts';
import { ConceptSchema, errors, validationHook } from '../openapi';

const route = createRoute({
  method: 'get',
  path: '/concepts',
  tags: ['catalogue'],
  summary: 'Resolve a concept',
  description: 'A WordNet 3.0 noun (lemma or synset id) with ImageNet classes under it, as `concepts` and policies use them.',
  request: {
    query: z.object({
      q: z
        .string({ error: 'which concept? GET /concepts?q=dog or ?q=n02084071' })
        .openapi({ description: 'A WordNet lemma (`dog`) or noun synset id (`n02084071`).', example: 'dog' }),
    }),
  },
  responses: {
    200: { description: 'The concept and its classes.', content: { 'application/json': { schema: ConceptSchema } } },
    ...errors(400, 401, 404, 500),
  },
});

export const conceptRoutes = new OpenAPIHono<{ Bindings: Env }>({ defaultHook: validationHook() }).openapi(route, (c) =>
  c.json(describeConcept(findConcept(c.req.valid('query').q)), 200),
);

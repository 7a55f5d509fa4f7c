/** `GET /concepts?q=<lemma or id>`: what a concept name resolves to, and the ImageNet classes under it. */
import { Hono } from 'hono';
import { describeConcept, findConcept } from '../concepts';
import { badRequest } from '../errors';

export const conceptRoutes = new Hono<{ Bindings: Env }>().get('/concepts', (c) => {
  const q = c.req.query('q');
  if (q === undefined) throw badRequest('which concept? GET /concepts?q=dog or ?q=n02084071');
  return c.json(describeConcept(findConcept(q)));
});

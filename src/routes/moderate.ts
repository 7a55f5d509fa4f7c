/**
 * `POST /moderate` and `POST /moderate/:policy`: classify as `/predict` does, then apply a
 * policy (named in the path, sent inline, or DEFAULT_POLICY) to every image's probabilities.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context, HonoRequest } from 'hono';
import type { Admitted } from '../admission';
import { getConfig } from '../config';
import { badRequest } from '../errors';
import { moderateBody } from '../answers';
import { answerHeaders, errors, ModerateBodySchema, moderateBody as moderateRequestBody, PolicyNameSchema, registerUploadSchemas, validationHook } from '../openapi';
import { inlinePolicy, loadPolicy, type ResolvedPolicy } from '../policies';
import { classifyRequest } from './predict';

type ModerateEnv = { Bindings: Env; Variables: Admitted };

const ok = { description: "Every image's decision under the policy.", headers: answerHeaders, content: { 'application/json': { schema: ModerateBodySchema } } };
/** As /predict's, and 404 for a policy that is not stored, 500 for one stored broken. */
const MODERATE_ERRORS = errors(400, 401, 404, 413, 415, 422, 500, 502, 503, 504);

const withDefault = createRoute({
  method: 'post',
  path: '/moderate',
  tags: ['moderate'],
  summary: 'Moderate under DEFAULT_POLICY or an inline policy',
  description: 'Classifies as /predict does (default model, top 5), then applies the inline policy if one is sent, else DEFAULT_POLICY (400 when it is not set).',
  request: { body: moderateRequestBody },
  responses: { 200: ok, ...MODERATE_ERRORS },
});

const named = createRoute({
  method: 'post',
  path: '/moderate/{policy}',
  tags: ['moderate'],
  summary: 'Moderate under a stored policy',
  description: 'As POST /moderate, under the stored policy named in the path (no inline policy with it: 400).',
  request: { params: z.object({ policy: PolicyNameSchema }), body: moderateRequestBody },
  responses: { 200: ok, ...MODERATE_ERRORS },
});

const routes = new OpenAPIHono<ModerateEnv>({ defaultHook: validationHook() });
registerUploadSchemas(routes.openAPIRegistry);

export const moderateRoutes = routes
  .openapi(withDefault, async (c) => c.json(await moderate(c, undefined), 200))
  .openapi(named, async (c) => c.json(await moderate(c, c.req.valid('param').policy), 200));

async function moderate(c: Context<ModerateEnv>, named: string | undefined) {
  const started = performance.now();
  const policy = await choosePolicy(c, named);
  // Hono keeps the parsed body, so the images are read from the same form or JSON.
  const { result, total } = await classifyRequest(c, getConfig(c.env).defaultModel, 5, started);
  return moderateBody(result, policy, total);
}

/** The path's policy, or the inline one, or DEFAULT_POLICY; never two of them. */
async function choosePolicy(c: Context<ModerateEnv>, named: string | undefined): Promise<ResolvedPolicy> {
  const inline = await readInlinePolicy(c.req);
  if (inline !== undefined) {
    if (named !== undefined) throw badRequest(`two policies: "${named}" in the path and one inline; send one (POST /moderate with an inline policy)`);
    return inlinePolicy(inline);
  }
  const name = named ?? getConfig(c.env).defaultPolicy;
  if (name === undefined) {
    throw badRequest('no policy: DEFAULT_POLICY is not set; name one (POST /moderate/<policy>) or send one inline (field "policy")');
  }
  return loadPolicy(c.env.MODELS, name);
}

/** The multipart text field `policy` (JSON) or `"policy"` in a JSON body; undefined when absent. */
async function readInlinePolicy(req: HonoRequest): Promise<unknown> {
  const type = req.header('Content-Type') ?? '';
  if (/^multipart\/form-data/i.test(type)) {
    let form: FormData;
    try {
      form = await req.formData();
    } catch {
      throw badRequest('malformed multipart body');
    }
    const fields = form.getAll('policy');
    if (fields.length === 0) return undefined;
    if (fields.length > 1) throw badRequest('several "policy" fields: send one');
    const field = fields[0]!;
    // As a file it would also count as an image field: text only (curl: -F "policy=<policy.json").
    if (typeof field !== 'string') throw badRequest('field "policy" must be text, not a file (curl: -F "policy=<policy.json")');
    try {
      return JSON.parse(field) as unknown;
    } catch {
      throw badRequest('field "policy" is not JSON');
    }
  }
  // application/json and the `+json` types, as readUploads takes them.
  if (/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    let body: unknown;
    try {
      body = await req.json();
    } catch {
      throw badRequest('malformed JSON body');
    }
    if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'policy' in body) return (body as { policy: unknown }).policy;
  }
  return undefined;
}

/**
 * `POST /jobs`: moderation without holding the request open. The job is checked here (policy,
 * callback, image source), recorded as queued in MODELS (jobs/<id>.json) and sent to the
 * queue; the consumer (src/jobs/consumer.ts) does the work. `GET /jobs/:id` reads the record.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { getConfig } from '../config';
import { ApiError, badRequest, notFound, tooLarge } from '../errors';
import { jobsConfig } from '../jobs/config';
import { newJobId } from '../jobs/ids';
import { headUpload } from '../jobs/moderate';
import { MAX_METADATA_BYTES, MAX_POLICY_BYTES } from '../jobs/request';
import { JOB_ID, readJob, updateJob } from '../jobs/store';
import { publicView, type JobMessage, type JobRecord } from '../jobs/types';
import { errors, JobAcceptedSchema, JobRequestBodySchema, JobSchema, validationHook } from '../openapi';
import { inlinePolicy, loadPolicy } from '../policies';
import { parseImageUrl } from '../url/fetch';
import { hostRules } from '../url/hosts';
import { callbackRefusal } from '../webhooks';

type JobsEnv = { Bindings: Env };

/** A job body is small: key or URL, policy and metadata are each bounded well under this. */
const MAX_JOB_BODY = MAX_POLICY_BYTES + MAX_METADATA_BYTES + 16 * 1024;

/**
 * JSON as @hono/zod-openapi's Content-Type gate takes it (its regex): anything it would refuse
 * (with a bare 415 of its own) is refused here first, in our error shape.
 */
const JSON_BODY = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

/** The body limit, then JSON or a 415, then the JSON parsed (Hono keeps it for the validator) or a 400. */
const jobBody: MiddlewareHandler[] = [
  bodyLimit({
    maxSize: MAX_JOB_BODY,
    onError: () => {
      throw tooLarge(`job body over ${MAX_JOB_BODY} bytes (policy <= ${MAX_POLICY_BYTES}, metadata <= ${MAX_METADATA_BYTES})`);
    },
  }),
  async (c, next) => {
    if (!JSON_BODY.test(c.req.header('Content-Type') ?? '')) {
      throw new ApiError('unsupported_media_type', 'send the job as JSON (Content-Type: application/json): { "key" } or { "url" }');
    }
    try {
      await c.req.json();
    } catch {
      throw badRequest('malformed JSON body');
    }
    await next();
  },
];

const postJob = createRoute({
  method: 'post',
  path: '/jobs',
  tags: ['moderate'],
  summary: 'Queue a moderation job',
  description:
    'Moderation without holding the request open: the job is checked now (policy, callback, image source), then queued; poll GET /jobs/{id}, or give a `callback` URL for a signed webhook.',
  middleware: jobBody,
  request: { body: { required: true, content: { 'application/json': { schema: JobRequestBodySchema } } } },
  responses: {
    202: {
      description: 'Queued.',
      headers: { Location: { description: 'The job: /jobs/{id}.', schema: { type: 'string' } } },
      content: { 'application/json': { schema: JobAcceptedSchema } },
    },
    ...errors(400, 401, 404, 413, 415, 500, 503),
  },
});

const getJob = createRoute({
  method: 'get',
  path: '/jobs/{id}',
  tags: ['moderate'],
  summary: 'A job',
  request: { params: z.object({ id: z.string().regex(JOB_ID, 'a job id is a UUID, as POST /jobs answered it').openapi({ format: 'uuid' }) }) },
  responses: {
    200: { description: 'The job; its `result` once done.', content: { 'application/json': { schema: JobSchema } } },
    ...errors(400, 401, 404, 500),
  },
});

// Issues named as they always were: `invalid job: body.key: ...`.
export const jobRoutes = new OpenAPIHono<JobsEnv>({ defaultHook: validationHook('job') })
  .openapi(
    postJob,
    async (c) => {
      const config = getConfig(c.env);
      const jobs = jobsConfig(c.env);
      const req = c.req.valid('json');

      // Whatever can be refused now is refused now, not in a webhook later.
      if (typeof req.policy === 'string') await loadPolicy(c.env.MODELS, req.policy);
      else if (req.policy !== undefined) await inlinePolicy(req.policy);
      if (req.callback !== undefined) {
        const why = callbackRefusal(req.callback, jobs);
        if (why) throw badRequest(`callback refused: ${why}`);
        if (jobs.webhookSecret === undefined) throw badRequest('callbacks are off: WEBHOOK_SECRET is not set, so webhooks could not be signed');
      }
      const selfHosts = [new URL(c.req.url).host, c.req.header('Host')].filter((h): h is string => h !== undefined);
      if (req.url !== undefined) parseImageUrl(req.url, hostRules(config.urlHosts, selfHosts));
      else if (req.key !== undefined) await headUpload(c.env.UPLOADS, req.key, config);

      const id = newJobId();
      const now = new Date().toISOString();
      const message: JobMessage = {
        type: 'job',
        id,
        source: req.key !== undefined ? { key: req.key } : { url: req.url! },
        ...(req.policy !== undefined ? { policy: req.policy } : {}),
        ...(req.model !== undefined ? { model: req.model } : {}),
        ...(req.callback !== undefined ? { callback: req.callback } : {}),
        ...(req.metadata !== undefined ? { metadata: req.metadata } : {}),
        selfHosts,
        createdAt: now,
      };
      const record: JobRecord = {
        id,
        status: 'queued',
        source: req.key !== undefined ? { key: req.key } : { host: new URL(req.url!).host },
        ...(req.metadata !== undefined ? { metadata: req.metadata } : {}),
        createdAt: now,
        updatedAt: now,
        attempts: 0,
        ...(req.callback !== undefined ? { callback: req.callback } : {}),
        delivery: { status: req.callback !== undefined ? 'pending' : 'none', attempts: 0 },
      };
      // Recorded before it is sent, so that the consumer never finds a job GET cannot see.
      await updateJob(c.env.MODELS, id, () => record);
      try {
        await c.env.MODERATION_QUEUE.send(message, { contentType: 'json' });
      } catch (err) {
        const at = new Date().toISOString();
        await updateJob(c.env.MODELS, id, (current) => current && { ...current, status: 'failed', reason: 'the job could not be queued', updatedAt: at, completedAt: at }).catch(() => {});
        throw new ApiError('overloaded', 'the job could not be queued; try again shortly', { cause: err, retryAfter: 5 });
      }
      c.header('Location', `/jobs/${id}`);
      return c.json({ id, status: 'queued' as const }, 202);
    },
  )
  .openapi(getJob, async (c) => {
    const { id } = c.req.valid('param');
    const found = await readJob(c.env.MODELS, id);
    if (!found) throw notFound(`no job ${id}`);
    return c.json(publicView(found.record), 200);
  });

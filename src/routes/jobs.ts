/**
 * `POST /jobs`: moderation without holding the request open. The job is checked here (policy,
 * callback, image source), recorded as queued in MODELS (jobs/<id>.json) and sent to the
 * queue; the consumer (src/jobs/consumer.ts) does the work. `GET /jobs/:id` reads the record.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { getConfig } from '../config';
import { ApiError, badRequest, notFound, tooLarge } from '../errors';
import { jobsConfig } from '../jobs/config';
import { newJobId } from '../jobs/ids';
import { headUpload } from '../jobs/moderate';
import { checkJobRequest, MAX_METADATA_BYTES, MAX_POLICY_BYTES } from '../jobs/request';
import { JOB_ID, readJob, updateJob } from '../jobs/store';
import { publicView, type JobMessage, type JobRecord } from '../jobs/types';
import { inlinePolicy, loadPolicy } from '../policies';
import { parseImageUrl } from '../url/fetch';
import { hostRules } from '../url/hosts';
import { callbackRefusal } from '../webhooks';

type JobsEnv = { Bindings: Env };

/** A job body is small: key or URL, policy and metadata are each bounded well under this. */
const MAX_JOB_BODY = MAX_POLICY_BYTES + MAX_METADATA_BYTES + 16 * 1024;

export const jobRoutes = new Hono<JobsEnv>()
  .post(
    '/jobs',
    bodyLimit({
      maxSize: MAX_JOB_BODY,
      onError: () => {
        throw tooLarge(`job body over ${MAX_JOB_BODY} bytes (policy <= ${MAX_POLICY_BYTES}, metadata <= ${MAX_METADATA_BYTES})`);
      },
    }),
    async (c) => {
      const config = getConfig(c.env);
      const jobs = jobsConfig(c.env);
      if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(c.req.header('Content-Type') ?? '')) {
        throw new ApiError('unsupported_media_type', 'send the job as JSON (Content-Type: application/json): { "key" } or { "url" }');
      }
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        throw badRequest('malformed JSON body');
      }
      const checked = checkJobRequest(body);
      if (!checked.ok) throw badRequest(checked.message);
      const req = checked.request;

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
  .get('/jobs/:id', async (c) => {
    const id = c.req.param('id');
    if (!JOB_ID.test(id)) throw badRequest('a job id is a UUID, as POST /jobs answered it');
    const found = await readJob(c.env.MODELS, id);
    if (!found) throw notFound(`no job ${id}`);
    return c.json(publicView(found.record));
  });

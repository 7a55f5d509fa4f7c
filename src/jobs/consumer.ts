/**
 * The queue consumer: a message is a job (ours, from POST /jobs) or an R2 object-create
 * notification from UPLOADS. Each is moderated, its outcome written once (first write wins),
 * and its webhook delivered. Transient failures are retried by the queue with exponential
 * backoff; the last attempt, or a message in the dead-letter queue, ends the job as failed.
 * Permanent failures end it at once. A repeated message finds the final record and only
 * re-sends its webhook (same body, same Idempotency-Key).
 */
import { getConfig } from '../config';
import { ApiError, hiddenCause } from '../errors';
import { callbackRefusal, deliver } from '../webhooks';
import { jobsConfig, type JobsConfig } from './config';
import { notificationJobId } from './ids';
import { headUpload, isTransient, moderateJob, type ModerationJob } from './moderate';
import { readJob, updateJob } from './store';
import { isFinal, webhookBody, type JobError, type JobMessage, type JobRecord, type R2Notification } from './types';

/** The queue() handler of the default export. */
export async function handleBatch(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
  const deadLetter = batch.queue === jobsConfig(env).deadLetterQueue;
  // Each message waits for its own admission slot, as requests do: the batch fits the isolate.
  await Promise.all(
    batch.messages.map(async (msg) => {
      try {
        await handleMessage(msg, env, deadLetter, (promise) => ctx.waitUntil(promise));
      } catch (err) {
        // A bug or a storage failure while recording: let the queue try again later.
        console.error(`job message ${msg.id}:`, err);
        msg.retry({ delaySeconds: backoff(jobsConfig(env), msg.attempts) });
      }
    }),
  );
}

/** A job as the consumer runs it, from either message shape. */
interface Job extends ModerationJob {
  id: string;
  callback?: string;
  metadata?: unknown;
  createdAt: string;
  /** An R2 notification: policy and callback come from the object's custom metadata. */
  fromNotification: boolean;
}

const CREATE_ACTIONS = new Set(['PutObject', 'CopyObject', 'CompleteMultipartUpload']);

async function toJob(body: unknown): Promise<Job | string> {
  if (typeof body !== 'object' || body === null) return 'not an object';
  const m = body as Partial<JobMessage> & Partial<R2Notification>;
  if (m.type === 'job' && typeof m.id === 'string' && m.source) {
    return {
      id: m.id,
      source: m.source,
      policy: m.policy,
      model: m.model,
      selfHosts: m.selfHosts,
      ...(m.callback !== undefined ? { callback: m.callback } : {}),
      ...(m.metadata !== undefined ? { metadata: m.metadata } : {}),
      createdAt: m.createdAt ?? new Date().toISOString(),
      fromNotification: false,
    };
  }
  if (typeof m.action === 'string' && typeof m.bucket === 'string' && typeof m.object?.key === 'string') {
    if (!CREATE_ACTIONS.has(m.action)) return `notification ${m.action} creates no object`;
    const { key, eTag } = m.object;
    return {
      id: await notificationJobId(m.bucket, key, eTag ?? ''),
      source: { key },
      createdAt: typeof m.eventTime === 'string' ? m.eventTime : new Date().toISOString(),
      fromNotification: true,
    };
  }
  return 'neither a job nor an R2 notification';
}

type WaitUntil = (promise: Promise<unknown>) => void;

async function handleMessage(msg: Message<unknown>, env: Env, deadLetter: boolean, waitUntil: WaitUntil): Promise<void> {
  const config = jobsConfig(env);
  const job = await toJob(msg.body);
  if (typeof job === 'string') {
    // Nothing to do and nothing a retry would change.
    console.warn(`queue message ${msg.id} ignored: ${job}`);
    return msg.ack();
  }
  const bucket = env.MODELS;
  const lastAttempt = msg.attempts > config.maxRetries;
  let record = (await readJob(bucket, job.id))?.record;

  if (!isFinal(record)) {
    if (deadLetter) {
      record = await finish(bucket, job, record, msg.attempts, {
        error: { code: 500, type: 'internal', message: record?.lastError ?? 'the consumer failed on every attempt (crash, memory or CPU limit)' },
        reason: `gave up after ${config.maxRetries + 1} attempts: ${record?.lastError ?? 'the consumer failed on every attempt'}`,
      });
    } else {
      record = await runJob(msg, env, config, job, record, lastAttempt, waitUntil);
      // Waiting for a retry: nothing to deliver yet.
      if (!isFinal(record)) return;
    }
  }
  if (deadLetter) {
    // Seen by GET /jobs/:id: the job's message exhausted the queue's retries.
    const now = new Date().toISOString();
    record = (await updateJob(bucket, job.id, (current) => current && { ...current, deadLetteredAt: now, updatedAt: now }, { allowFinal: true })) ?? record;
  }
  await deliverFor(msg, env, config, record!, { lastAttempt: deadLetter || lastAttempt, deadLetter });
}

/** Moderates the job; the record returned is final unless the message was sent back to the queue. */
async function runJob(
  msg: Message<unknown>,
  env: Env,
  config: JobsConfig,
  job: Job,
  record: JobRecord | undefined,
  lastAttempt: boolean,
  waitUntil: WaitUntil,
): Promise<JobRecord> {
  const now = new Date().toISOString();
  const running = await updateJob(env.MODELS, job.id, (current) => ({
    ...(current ?? initialRecord(job, now)),
    status: 'running',
    attempts: msg.attempts,
    updatedAt: now,
  }));
  if (isFinal(running)) return running!;
  try {
    const callback = await chooseSource(env, config, job);
    if (callback) await updateJob(env.MODELS, job.id, (current) => current && { ...current, ...callback });
    const result = await moderateJob(env, job, waitUntil);
    return finish(env.MODELS, job, record, msg.attempts, { result });
  } catch (err) {
    const error = toJobError(err);
    if (isTransient(err) && !lastAttempt) {
      const waiting = await updateJob(env.MODELS, job.id, (current) => current && { ...current, status: 'queued', lastError: error.message, updatedAt: new Date().toISOString() });
      // A duplicate delivery finished the job meanwhile: deliver its outcome instead of retrying.
      if (isFinal(waiting)) return waiting!;
      msg.retry({ delaySeconds: backoff(config, msg.attempts) });
      return waiting!;
    }
    const reason = isTransient(err) ? `gave up after ${msg.attempts} attempts: ${error.message}` : error.message;
    return finish(env.MODELS, job, record, msg.attempts, { error, reason });
  }
}

/**
 * For an object: its head (404 and 413 before any byte is read), and the policy and callback
 * its custom metadata chooses where the job names none. A metadata callback is set by whoever
 * uploaded, so it is honoured only for hosts listed in a non-empty CALLBACK_HOSTS.
 */
async function chooseSource(env: Env, config: JobsConfig, job: Job): Promise<Partial<JobRecord> | undefined> {
  if (!('key' in job.source)) return undefined;
  const head = await headUpload(env.UPLOADS, job.source.key, getConfig(env));
  if (job.policy === undefined && head.policy !== undefined) job.policy = head.policy;
  if (job.callback !== undefined || head.callback === undefined) return undefined;
  const why =
    config.callbackRules.allowed.length === 0
      ? 'a callback in object metadata is used only when CALLBACK_HOSTS lists its host'
      : callbackRefusal(head.callback, config);
  if (why !== undefined) return { delivery: { status: 'refused', attempts: 0, reason: why } };
  job.callback = head.callback;
  return { callback: head.callback, delivery: { status: 'pending', attempts: 0 } };
}

function initialRecord(job: Job, now: string): JobRecord {
  return {
    id: job.id,
    status: 'queued',
    source: 'key' in job.source ? { key: job.source.key } : { host: hostOf(job.source.url) },
    ...(job.metadata !== undefined ? { metadata: job.metadata } : {}),
    createdAt: job.createdAt,
    updatedAt: now,
    attempts: 0,
    ...(job.callback !== undefined ? { callback: job.callback } : {}),
    delivery: { status: job.callback !== undefined ? 'pending' : 'none', attempts: 0 },
  };
}

/** The first final write wins: when another delivery got there first, its record is returned. */
async function finish(
  bucket: R2Bucket,
  job: Job,
  record: JobRecord | undefined,
  attempts: number,
  outcome: { result: JobRecord['result'] } | { error: JobError; reason: string },
): Promise<JobRecord> {
  const now = new Date().toISOString();
  const written = await updateJob(bucket, job.id, (current) => {
    const base = current ?? record ?? initialRecord(job, now);
    const { lastError: _lastError, ...rest } = base;
    return 'result' in outcome
      ? { ...rest, status: 'done', result: outcome.result, attempts, updatedAt: now, completedAt: now }
      : { ...rest, status: 'failed', reason: outcome.reason, error: outcome.error, attempts, updatedAt: now, completedAt: now };
  });
  return written!;
}

/**
 * Sends the final record's webhook, if it has a callback, and records how it went. A webhook
 * still failing on the last attempt is recorded as failed and its message goes on to the
 * dead-letter queue, where operators see (and can replay) what was never delivered; there it
 * is not sent again, unless the consumer crashed before recording any outcome.
 */
async function deliverFor(
  msg: Message<unknown>,
  env: Env,
  config: JobsConfig,
  record: JobRecord,
  { lastAttempt, deadLetter }: { lastAttempt: boolean; deadLetter: boolean },
): Promise<void> {
  if (record.callback === undefined || record.delivery.status === 'refused') return msg.ack();
  if (deadLetter && record.delivery.status === 'failed') return msg.ack();
  // Re-checked at delivery: the settings may have changed since the job was posted.
  const refused = callbackRefusal(record.callback, config);
  const secret = config.webhookSecret;
  const outcome = refused
    ? { ok: false as const, transient: false, reason: refused }
    : secret === undefined
      ? { ok: false as const, transient: false, reason: 'WEBHOOK_SECRET is not set: the webhook cannot be signed' }
      : await deliver(record.callback, webhookBody(record), { secret, timeoutMs: config.webhookTimeoutMs, idempotencyKey: record.id });
  const retry = !outcome.ok && outcome.transient && !lastAttempt;
  const now = new Date().toISOString();
  await updateJob(
    env.MODELS,
    record.id,
    (current) =>
      current && {
        ...current,
        updatedAt: now,
        delivery: {
          status: outcome.ok ? 'delivered' : retry ? 'pending' : 'failed',
          attempts: current.delivery.attempts + 1,
          ...(outcome.ok ? {} : { reason: retry ? outcome.reason : `${outcome.reason}${outcome.transient ? ` (gave up after ${msg.attempts} attempts)` : ''}` }),
          at: now,
        },
      },
    { allowFinal: true },
  );
  if (retry) msg.retry({ delaySeconds: backoff(config, msg.attempts) });
  // Retried past max_retries, the queue moves it to the dead-letter queue at once.
  else if (!outcome.ok && outcome.transient && !deadLetter) msg.retry({ delaySeconds: 0 });
  else msg.ack();
}

/** RETRY_BASE_SECONDS * 2^(attempt-1), within the 12 hours a queue allows. */
export function backoff(config: JobsConfig, attempts: number): number {
  return Math.min(config.retryBaseSeconds * 2 ** Math.max(0, attempts - 1), 43_200);
}

function toJobError(err: unknown): JobError {
  if (err instanceof ApiError) {
    const cause = hiddenCause(err);
    if (cause !== undefined) console.error(`job failed: ${err.message}:`, cause);
    return err.toJSON();
  }
  // Internals stay in the log, as the HTTP onError does.
  console.error('job failed:', err);
  return { code: 500, type: 'internal', message: 'internal error (storage or runtime); see the Worker log' };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

/**
 * One job's moderation, the way `POST /moderate` does it: the same admission (a slot of the
 * isolate's MAX_IN_FLIGHT before the image is read, decode memory metered), the same limits,
 * the same pipeline, policies and answer body. Only where the image comes from differs.
 */
import { moderateBody, type ModerateBody } from '../answers';
import { isolateAdmission } from '../app';
import { resultCacheFor } from '../cache';
import { getConfig, type Config } from '../config';
import { ApiError, badRequest, notFound, tooLarge } from '../errors';
import { registryFor } from '../models/registry';
import { classify } from '../pipeline/classify';
import { inlinePolicy, loadPolicy, type ResolvedPolicy } from '../policies';
import { uploadFromUrl, type Upload } from '../upload';
import type { JobSource } from './types';

export interface ModerationJob {
  source: JobSource;
  /** A stored policy's name or an inline policy; DEFAULT_POLICY when absent. */
  policy?: string | object | undefined;
  model?: string | undefined;
  selfHosts?: string[] | undefined;
}

/** What an upload's custom metadata may choose (`policy`, `callback`), read with its head. */
export interface UploadHead {
  size: number;
  policy?: string;
  callback?: string;
}

/**
 * The head of an UPLOADS object: 404 when there is none, 413 when over MAX_BODY_BYTES (known
 * from its size, so the bytes are never read).
 */
export async function headUpload(bucket: R2Bucket, key: string, config: Config): Promise<UploadHead> {
  const head = await bucket.head(key);
  if (!head) throw notFound(`no object "${key.slice(0, 200)}" in the uploads bucket`);
  if (head.size > config.maxBodyBytes) throw tooLarge(`object "${key.slice(0, 200)}" has ${head.size} bytes, over MAX_BODY_BYTES (${config.maxBodyBytes})`);
  if (head.size === 0) throw badRequest(`object "${key.slice(0, 200)}" is empty`);
  const { policy, callback } = head.customMetadata ?? {};
  return { size: head.size, ...(policy ? { policy } : {}), ...(callback ? { callback } : {}) };
}

/** `waitUntil`: the consumer's, for result cache writes that outlive the message. */
export async function moderateJob(env: Env, job: ModerationJob, waitUntil: (promise: Promise<unknown>) => void): Promise<ModerateBody> {
  const started = performance.now();
  const config = getConfig(env);
  const policy = await resolvePolicy(env, config, job.policy);
  const deadline = Date.now() + config.requestTimeoutMs;
  const admission = isolateAdmission(config);
  const release = await admission.enter(deadline);
  try {
    const upload = await readSource(env, config, job);
    const result = await classify(registryFor(env), job.model ?? config.defaultModel, [upload], {
      topk: 5,
      limits: { maxPixels: config.maxPixels, maxMemoryMB: config.maxDecodeMB },
      deadlineMs: deadline,
      reserveMemory: (bytes) => admission.reserve(bytes, deadline),
      // The entries HTTP and RPC use. No host: a queue message was not reached on any name.
      cache: resultCacheFor(env, waitUntil, undefined),
    });
    return moderateBody(result, policy, performance.now() - started);
  } finally {
    release();
  }
}

async function readSource(env: Env, config: Config, job: ModerationJob): Promise<Upload> {
  if ('url' in job.source) return uploadFromUrl(job.source.url, config, job.selfHosts ?? []);
  const key = job.source.key;
  const object = await env.UPLOADS.get(key);
  if (!object) throw notFound(`no object "${key.slice(0, 200)}" in the uploads bucket`);
  // Checked again on the object itself: it may have been replaced since its head was read.
  if (object.size > config.maxBodyBytes) {
    await object.body.cancel();
    throw tooLarge(`object "${key.slice(0, 200)}" has ${object.size} bytes, over MAX_BODY_BYTES (${config.maxBodyBytes})`);
  }
  return { name: `object "${key.slice(0, 200)}"`, bytes: new Uint8Array(await object.arrayBuffer()) };
}

/** A name, an inline policy, or a JSON text of one (an upload's `policy` metadata), else DEFAULT_POLICY. */
async function resolvePolicy(env: Env, config: Config, policy: string | object | undefined): Promise<ResolvedPolicy> {
  if (typeof policy === 'object') return inlinePolicy(policy);
  if (typeof policy === 'string') {
    if (!policy.trimStart().startsWith('{')) return loadPolicy(env.MODELS, policy.trim());
    let parsed: unknown;
    try {
      parsed = JSON.parse(policy);
    } catch {
      throw badRequest('the policy is neither a policy name nor JSON');
    }
    return inlinePolicy(parsed);
  }
  if (config.defaultPolicy === undefined) throw badRequest('no policy: DEFAULT_POLICY is not set and the job names none');
  return loadPolicy(env.MODELS, config.defaultPolicy);
}

/**
 * Whether a failure will go away by itself: storage and runtime errors, an overloaded isolate,
 * a model that is loading or missing for a moment, a URL upstream that failed or was slow.
 * What the caller sent (not an image, too large, unknown policy or model) will not.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof ApiError)) return true;
  return err.type === 'model_unavailable' || err.type === 'overloaded' || err.type === 'bad_gateway' || err.type === 'gateway_timeout' || err.type === 'internal';
}

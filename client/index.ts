/**
 * A typed client for the edge-resnet HTTP API (package export `edge-resnet/client`), for
 * Workers, Node >= 20 and browsers: web-standard fetch, FormData and Blob only.
 *
 *   import { createClient, EdgeResnetError } from 'edge-resnet/client';
 *   const api = createClient({ baseUrl: 'https://edge-resnet.example.workers.dev', apiKey });
 *   const { images, model } = await api.classify(bytes, { topk: 3 });
 *
 * Answers are the API's JSON bodies, typed (./types.ts), plus `cache` from X-Cache. With
 * synthetic weights (`model.weights === 'synthetic'`, a `notice` in the body) an answer is
 * no real classification of the image.
 */
import { imageBody } from './body.js';
import { call, sleep, withDeadline, type CallOptions, type FetchLike, type HttpSettings } from './http.js';
import type {
  AnswerMeta,
  CacheStatus,
  ClassifyResult,
  Concept,
  ImageBytes,
  ImageInput,
  InlinePolicy,
  Job,
  JobCreated,
  ModelList,
  ModerateBody,
  ModerateResult,
  PredictBody,
  StoredPolicy,
} from './types.js';

export { EdgeResnetError } from './errors.js';
export type { CallOptions, FetchLike } from './http.js';
export type * from './types.js';

export interface ClientOptions {
  /** Where the Worker answers, e.g. `https://edge-resnet.example.workers.dev` (a path prefix is kept). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` when the Worker has an API_KEY. */
  apiKey?: string;
  /** The global fetch by default; in a Worker, a service binding's: `fetch: (r) => env.API.fetch(r)`. */
  fetch?: FetchLike;
  /** Per call, retries and waits included; 0 for none. Default 60 000. */
  timeoutMs?: number;
  /**
   * Times to retry a `503 overloaded` answer, after the Retry-After it carries. Default 0: the
   * error (with `retryAfter`) goes to the caller, who knows whether waiting is worth it.
   */
  retries?: number;
  /** A Retry-After longer than this is not waited for. Default 30 000. */
  maxRetryDelayMs?: number;
}

export interface ClassifyOptions extends CallOptions {
  /** A model id (`resnet50v1`): POST /predict/:model. The Worker's DEFAULT_MODEL otherwise. */
  model?: string;
  /** Classes in each image's `predictions`, 1..1000 (default 5). */
  topk?: number;
  /** Concepts to score on each image (WordNet lemmas or synset ids, at most 50). */
  concepts?: string[];
}

export interface ModerateOptions extends CallOptions {
  /** A stored policy's name, an inline policy, or absent for the Worker's DEFAULT_POLICY. */
  policy?: string | InlinePolicy;
}

/** `POST /jobs`: exactly one of `key` (an object in the UPLOADS bucket) or `url`. */
export type JobRequest = ({ key: string; url?: never } | { url: string; key?: never }) & {
  policy?: string | InlinePolicy;
  model?: string;
  /** Your webhook (https); it gets the signed result (README "Webhooks"). */
  callback?: string;
  /** Any JSON, at most 4 KB, echoed back in the record and the webhook. */
  metadata?: unknown;
};

export interface WaitOptions {
  /** Between polls of GET /jobs/:id. Default 1000. */
  intervalMs?: number;
  signal?: AbortSignal;
  /** The whole wait; 0 for none. Default 600 000: a job retried to the end takes about 5 minutes. */
  timeoutMs?: number;
}

export interface EdgeResnetClient {
  /** POST /predict (or /predict/:model): one image, a batch (an array of bytes), or `{ url }`. */
  classify(image: ImageInput | readonly ImageBytes[], options?: ClassifyOptions): Promise<ClassifyResult>;
  /** POST /moderate (or /moderate/:policy): every image's decision under the policy. */
  moderate(image: ImageInput | readonly ImageBytes[], options?: ModerateOptions): Promise<ModerateResult>;
  /** GET /concepts?q=: what a lemma or synset id resolves to. */
  concept(q: string, options?: CallOptions): Promise<Concept>;
  /** GET /policies: the names of the stored policies. */
  policies(options?: CallOptions): Promise<string[]>;
  /** GET /policies/:name. */
  policy(name: string, options?: CallOptions): Promise<StoredPolicy>;
  /** GET /models. */
  models(options?: CallOptions): Promise<ModelList>;
  /** POST /jobs: queued at once; the result comes to `callback` and to getJob / waitForJob. */
  createJob(job: JobRequest, options?: CallOptions): Promise<JobCreated>;
  /** GET /jobs/:id. */
  getJob(id: string, options?: CallOptions): Promise<Job>;
  /**
   * Polls GET /jobs/:id until the job is `done` or `failed` and returns it: a failed job is a
   * result (see its `reason` and `error`), not a thrown error.
   */
  waitForJob(id: string, options?: WaitOptions): Promise<Job & { status: 'done' | 'failed' }>;
}

export function createClient(options: ClientOptions): EdgeResnetClient {
  if (typeof options.baseUrl !== 'string' || !/^https?:\/\//i.test(options.baseUrl)) {
    throw new TypeError(`baseUrl must be an http(s) URL, got ${JSON.stringify(options.baseUrl)}`);
  }
  const http: HttpSettings = {
    baseUrl: options.baseUrl,
    apiKey: options.apiKey,
    // Called as a plain function: browsers refuse a fetch called on another object.
    fetch: options.fetch ?? ((request) => fetch(request)),
    timeoutMs: options.timeoutMs ?? 60_000,
    retries: options.retries ?? 0,
    maxRetryDelayMs: options.maxRetryDelayMs ?? 30_000,
  };
  const segment = (value: string) => encodeURIComponent(value);
  const get = async <T>(path: string, query: Record<string, string | undefined> | undefined, o?: CallOptions) =>
    (await call<T>(http, { method: 'GET', path, ...(query ? { query } : {}) }, o)).body;

  const getJob = (id: string, o?: CallOptions) => get<Job>(`/jobs/${segment(id)}`, undefined, o);

  return {
    async classify(image, o = {}) {
      const path = o.model !== undefined ? `/predict/${segment(o.model)}` : '/predict';
      const query = { topk: o.topk?.toString(), concepts: o.concepts?.join(',') };
      const res = await call<PredictBody>(http, { method: 'POST', path, query, prepare: () => imageBody(image) }, o);
      return withMeta(res.body, res.headers);
    },

    async moderate(image, o = {}) {
      const inline = typeof o.policy === 'object' ? o.policy : undefined;
      const path = typeof o.policy === 'string' ? `/moderate/${segment(o.policy)}` : '/moderate';
      const res = await call<ModerateBody>(http, { method: 'POST', path, prepare: () => imageBody(image, inline) }, o);
      return withMeta(res.body, res.headers);
    },

    concept: (q, o) => get<Concept>('/concepts', { q }, o),
    policies: async (o) => (await get<{ policies: string[] }>('/policies', undefined, o)).policies,
    policy: (name, o) => get<StoredPolicy>(`/policies/${segment(name)}`, undefined, o),
    models: (o) => get<ModelList>('/models', undefined, o),

    async createJob(job, o) {
      const res = await call<JobCreated>(http, { method: 'POST', path: '/jobs', body: JSON.stringify(job), contentType: 'application/json' }, o);
      return res.body;
    },

    getJob,

    async waitForJob(id, o = {}) {
      const intervalMs = o.intervalMs ?? 1000;
      const deadline = withDeadline(o.signal, o.timeoutMs ?? 600_000, `waiting for job ${id}`);
      try {
        for (;;) {
          // Each poll is a call of its own (the client's timeout), inside the wait's deadline.
          const job = await getJob(id, { signal: deadline.signal });
          if (job.status === 'done' || job.status === 'failed') return job as Job & { status: 'done' | 'failed' };
          await sleep(intervalMs, deadline.signal);
        }
      } catch (err) {
        throw deadline.reason() ?? err;
      } finally {
        deadline.done();
      }
    },
  };
}

const CACHE = new Set<string>(['HIT', 'MISS', 'BYPASS']);

function withMeta<T extends object>(body: T, headers: Headers): T & AnswerMeta {
  const cache = headers.get('X-Cache');
  return CACHE.has(cache ?? '') ? { ...body, cache: cache as CacheStatus } : body;
}

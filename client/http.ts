/**
 * One API call: a fetch with the key, a deadline, the caller's AbortSignal, and the optional
 * retry of `503 overloaded` after its Retry-After. Every failure leaves as an EdgeResnetError,
 * except the caller's own abort, which rejects with the signal's reason as fetch does.
 */
import { EdgeResnetError, errorFromResponse } from './errors.js';

/** A fetch: the global one, a service binding's (`(r) => env.API.fetch(r)`), or a test's fake. */
export type FetchLike = (request: Request) => Promise<Response>;

export interface CallOptions {
  /** Aborting it rejects the call with the signal's reason. */
  signal?: AbortSignal;
  /** The whole call, retries and waits included; 0 for none. The client's default otherwise. */
  timeoutMs?: number;
  /** Times to retry a `503 overloaded` answer after its Retry-After. The client's default otherwise. */
  retries?: number;
}

export interface HttpSettings {
  baseUrl: string;
  apiKey: string | undefined;
  fetch: FetchLike;
  timeoutMs: number;
  retries: number;
  /** A Retry-After longer than this is not waited for: the `overloaded` error is thrown. */
  maxRetryDelayMs: number;
}

export interface Call {
  method: 'GET' | 'POST';
  path: string;
  query?: Record<string, string | undefined>;
  body?: FormData | string;
  contentType?: string;
  /** Makes the body under the call's deadline and signal (reading a caller's stream may take a while). */
  prepare?: () => Promise<{ body: FormData | string; contentType?: string }>;
}

/** Without a Retry-After (the API always sends one with `overloaded`), wait this long. */
const DEFAULT_RETRY_DELAY_MS = 1000;

export async function call<T>(http: HttpSettings, request: Call, options: CallOptions = {}): Promise<{ body: T; headers: Headers }> {
  const url = buildUrl(http.baseUrl, request.path, request.query);
  const retries = options.retries ?? http.retries;
  const deadline = withDeadline(options.signal, options.timeoutMs ?? http.timeoutMs, `${request.method} ${request.path}`);
  try {
    if (request.prepare) request = { ...request, ...(await untilAborted(request.prepare(), deadline.signal)) };
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (http.apiKey !== undefined) headers.Authorization = `Bearer ${http.apiKey}`;
    if (request.contentType) headers['Content-Type'] = request.contentType;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      // An already-aborted call sends nothing (a custom fetch may not look at the signal first).
      if (deadline.signal.aborted) throw deadline.reason();
      try {
        res = await http.fetch(new Request(url, { method: request.method, headers, body: request.body ?? null, signal: deadline.signal }));
      } catch (err) {
        throw deadline.reason() ?? new EdgeResnetError(0, 'network', `${request.method} ${request.path}: ${describe(err)}`, { cause: err });
      }
      if (res.ok) return { body: await readJson<T>(res, deadline), headers: res.headers };
      const error = await errorFromResponse(res).catch((err: unknown) => {
        throw deadline.reason() ?? err;
      });
      const delayMs = error.retryAfter !== undefined ? error.retryAfter * 1000 : DEFAULT_RETRY_DELAY_MS;
      if (error.type !== 'overloaded' || attempt >= retries || delayMs > http.maxRetryDelayMs || delayMs >= deadline.remainingMs()) throw error;
      await sleep(delayMs, deadline.signal).catch(() => {
        throw deadline.reason() ?? error;
      });
    }
  } finally {
    deadline.done();
  }
}

async function readJson<T>(res: Response, deadline: Deadline): Promise<T> {
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw deadline.reason() ?? new EdgeResnetError(0, 'network', `reading the answer: ${describe(err)}`, { cause: err });
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new EdgeResnetError(res.status, 'unexpected_response', `HTTP ${res.status} answered with no JSON: ${text.trim().slice(0, 200)}`);
  }
}

function buildUrl(base: string, path: string, query: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, value);
  const search = params.toString();
  // Concatenated, not resolved: a base with a path (https://example.com/api) keeps it.
  return `${base.replace(/\/+$/, '')}${path}${search ? `?${search}` : ''}`;
}

export interface Deadline {
  signal: AbortSignal;
  /** Why the call stopped (the caller's abort reason or a `timeout` error), once it has. */
  reason(): unknown;
  remainingMs(): number;
  done(): void;
}

/**
 * A signal that aborts when the caller's does or when `timeoutMs` runs out, whichever is first.
 * Written out rather than AbortSignal.any/timeout, whose support still varies across runtimes.
 */
export function withDeadline(outer: AbortSignal | undefined, timeoutMs: number, what: string): Deadline {
  const controller = new AbortController();
  const onAbort = () => controller.abort(outer!.reason);
  if (outer?.aborted) controller.abort(outer.reason);
  else outer?.addEventListener('abort', onAbort, { once: true });
  const end = timeoutMs > 0 ? Date.now() + timeoutMs : Infinity;
  const timer =
    timeoutMs > 0
      ? setTimeout(() => controller.abort(new EdgeResnetError(0, 'timeout', `${what}: no answer within ${timeoutMs} ms`)), timeoutMs)
      : undefined;
  return {
    signal: controller.signal,
    reason: () => (controller.signal.aborted ? controller.signal.reason : undefined),
    remainingMs: () => end - Date.now(),
    done: () => {
      if (timer !== undefined) clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    },
  };
}

/** `work`'s result, or the signal's reason when it aborts first (the work itself runs on, unobserved). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as unknown);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// undici says only "fetch failed": the reason (refused, reset) is its cause.
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
}

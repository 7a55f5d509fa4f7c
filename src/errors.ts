import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ErrorBody, ErrorType } from './answers/types';

export type { ErrorType };

const STATUS: Record<ErrorType, ContentfulStatusCode> = {
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable_image: 422,
  model_unavailable: 503,
  overloaded: 503,
  bad_gateway: 502,
  gateway_timeout: 504,
  internal: 500,
};

/**
 * The one error type of the API. Every failure a caller can cause or see is an ApiError;
 * `onError` in src/app.ts turns it into `{ code, type, message }` JSON. Anything else that
 * reaches `onError` is a bug and becomes an opaque 500 (internals are logged, never sent).
 */
export class ApiError extends HTTPException {
  readonly type: ErrorType;
  /** Seconds for a Retry-After header: set on errors that go away by themselves (overload). */
  readonly retryAfter: number | undefined;

  constructor(type: ErrorType, message: string, options?: { cause?: unknown; retryAfter?: number }) {
    super(STATUS[type], { message, cause: options?.cause });
    this.type = type;
    this.name = 'ApiError';
    this.retryAfter = options?.retryAfter;
  }

  toJSON(): ErrorBody {
    return { code: this.status, type: this.type, message: this.message };
  }
}

// Factories keep call sites short and the wording consistent.
export const badRequest = (message: string) => new ApiError('bad_request', message);
export const notFound = (message: string) => new ApiError('not_found', message);
export const tooLarge = (message: string) => new ApiError('payload_too_large', message);
export const unsupportedMedia = (message: string) => new ApiError('unsupported_media_type', message);
export const unprocessableImage = (message: string, cause?: unknown) =>
  new ApiError('unprocessable_image', message, { cause });
export const modelUnavailable = (message: string, cause?: unknown) =>
  new ApiError('model_unavailable', message, { cause });
/** An upstream the Worker fetched for the caller (URL input) failed or answered an error. */
export const badGateway = (message: string, cause?: unknown) => new ApiError('bad_gateway', message, { cause });
/** An upstream the Worker fetched for the caller (URL input) was too slow. */
export const gatewayTimeout = (message: string) => new ApiError('gateway_timeout', message);

/** The `onError` of every app here: ApiErrors as their JSON, anything else as an opaque 500. */
export function errorResponse(err: Error, c: Context): Response {
  if (err instanceof ApiError) {
    if (err.retryAfter !== undefined) c.header('Retry-After', String(err.retryAfter));
    // The caller sees the message; the cause behind a 5xx (an R2 error, a stage Worker's
    // failure) is only in the log, under the request's id.
    const cause = hiddenCause(err);
    if (cause !== undefined) logError(c, err.type, cause);
    return c.json(err.toJSON(), err.status);
  }
  // Anything else is our bug: log it, and tell the caller nothing about internals.
  logError(c, 'internal', err);
  return c.json({ code: 500, type: 'internal', message: 'internal error' }, 500);
}

/**
 * The cause behind a 5xx ApiError (R2's own words, a stage Worker's failure), which the caller
 * is not told: each way out (HTTP here, RPC, a job) logs it once, and the place that raised the
 * error does not log it too.
 */
export function hiddenCause(err: ApiError): unknown {
  return err.status >= 500 ? err.cause : undefined;
}

/** One JSON line, as the request log's (src/middleware/request-log), found by the request id. */
function logError(c: Context, type: ErrorType, cause: unknown): void {
  const id = (c.get as (key: string) => unknown)('requestId');
  const detail = cause instanceof Error ? { cause: `${cause.name}: ${cause.message}`, stack: cause.stack } : { cause: String(cause) };
  console.error(JSON.stringify({ id, level: 'error', method: c.req.method, path: c.req.path, type, ...detail }));
}

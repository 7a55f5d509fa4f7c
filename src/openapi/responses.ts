/**
 * The error responses a route documents, and the hook that turns a failed validation into our
 * error. Every status comes from an `ApiError` (src/errors.ts): these say when each is given.
 */
import type { Hook } from '@hono/zod-openapi';
import type { ZodError } from 'zod';
import { badRequest } from '../errors';
import { ErrorBodySchema, V2ErrorSchema } from './schemas';

export type ErrorStatus = 400 | 401 | 404 | 413 | 415 | 422 | 500 | 502 | 503 | 504;

/** What each status means here, by `type`. */
const WHEN: Record<ErrorStatus, string> = {
  400: '`bad_request`: the request is malformed (the message names the field or part).',
  401: '`unauthorized`: API_KEY is set and the request has no valid key (`Authorization: Bearer <key>` or `X-API-Key`).',
  404: '`not_found`: the model, policy, concept, job or object named does not exist.',
  413: '`payload_too_large`: the body is over MAX_BODY_BYTES, there are more than MAX_IMAGES images, or an image has too many pixels or needs too much decode memory.',
  415: '`unsupported_media_type`: not an image format the Worker decodes (JPEG, PNG, WebP, GIF), or the wrong Content-Type.',
  422: '`unprocessable_image`: the image is corrupt or truncated.',
  500: '`internal`: a bug, or a stored policy that is invalid; details are logged, never sent.',
  502: '`bad_gateway`: the image URL could not be fetched, or its server answered an error.',
  503: '`model_unavailable` (the model is not uploaded, or failed to load) or `overloaded` (every request slot or the decode memory stayed taken, or the line ahead would predictably outlast the wait: retry after `Retry-After` seconds).',
  504: '`gateway_timeout`: the image URL was too slow (URL_TIMEOUT_MS), or the request ran out of REQUEST_TIMEOUT_MS.',
};

const RETRY_AFTER = {
  'Retry-After': { description: 'With `overloaded`: seconds after which a retry is likely to be admitted.', schema: { type: 'integer' as const } },
};
const WWW_AUTHENTICATE = { 'WWW-Authenticate': { description: '`Bearer realm="edge-resnet"`', schema: { type: 'string' as const } } };

function errorResponse(status: ErrorStatus, schema: typeof ErrorBodySchema | typeof V2ErrorSchema) {
  return {
    description: WHEN[status],
    content: { 'application/json': { schema } },
    ...(status === 503 ? { headers: RETRY_AFTER } : status === 401 ? { headers: WWW_AUTHENTICATE } : {}),
  };
}

/** `{ [status]: response }` for a route's `responses`, in our `{ code, type, message }` shape. */
export function errors<S extends ErrorStatus>(...statuses: S[]): { [K in S]: { description: string; content: { 'application/json': { schema: typeof ErrorBodySchema } } } } {
  return Object.fromEntries(statuses.map((s) => [s, errorResponse(s, ErrorBodySchema)])) as never;
}

/** The same for /v2 paths, in the protocol's `{ error }` shape. */
export function v2Errors<S extends ErrorStatus>(...statuses: S[]): { [K in S]: { description: string; content: { 'application/json': { schema: typeof V2ErrorSchema } } } } {
  return Object.fromEntries(statuses.map((s) => [s, errorResponse(s, V2ErrorSchema)])) as never;
}

/**
 * A failed validation as our 400: every issue, each naming its field (`query.topk: ...`,
 * `body.key: ...`), so that a caller fixes a request in one go. Thrown, so that `onError`
 * writes it in the path's error shape (ours, or /v2's). `what` names the thing validated.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- it serves every route, whatever its env and input
export function validationHook(what = 'request'): Hook<any, any, any, any> {
  return (result) => {
    if (!result.success) throw badRequest(`invalid ${what}: ${describeIssues(result.target, result.error)}`);
  };
}

const TARGET_NAMES: Record<string, string> = { json: 'body', form: 'body', query: 'query', param: 'path', header: 'header', cookie: 'cookie' };

function describeIssues(target: string, error: ZodError): string {
  return error.issues
    .map((issue) => {
      const field = issue.path.reduce<string>((at, key) => (typeof key === 'number' ? `${at}[${key}]` : `${at}.${String(key)}`), TARGET_NAMES[target] ?? target);
      return `${field}: ${issue.message}`;
    })
    .join('; ');
}

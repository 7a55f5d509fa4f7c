import type { ApiErrorType, ErrorType } from './types.js';

/**
 * The one error the client throws for a failed call: the API's `{ code, type, message }` with
 * the answer's status, or a client-side failure (status 0: `timeout`, `network`). A caller's own
 * abort is not one of these: it rejects with the signal's reason, as fetch does.
 */
export class EdgeResnetError extends Error {
  override readonly name = 'EdgeResnetError';
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  readonly type: ErrorType;
  /** Seconds the server asked the caller to wait (Retry-After), on `overloaded` answers. */
  readonly retryAfter: number | undefined;

  constructor(status: number, type: ErrorType, message: string, options: { retryAfter?: number | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.type = type;
    this.retryAfter = options.retryAfter;
  }
}

// A record over the type, so that a new error type the Worker adds fails to compile here.
const API_TYPE_KEYS: Record<ApiErrorType, true> = {
  bad_request: true,
  unauthorized: true,
  not_found: true,
  method_not_allowed: true,
  payload_too_large: true,
  unsupported_media_type: true,
  unprocessable_image: true,
  model_unavailable: true,
  overloaded: true,
  bad_gateway: true,
  gateway_timeout: true,
  internal: true,
};
const API_TYPES = new Set<string>(Object.keys(API_TYPE_KEYS));

/**
 * The error a non-2xx answer stands for. Its body is read whatever it is: an answer that is not
 * the API's JSON (wrangler dev's proxy, a CDN's error page) still becomes an EdgeResnetError,
 * with the start of its text as the message.
 */
export async function errorFromResponse(res: Response): Promise<EdgeResnetError> {
  const retryAfter = parseRetryAfter(res.headers.get('Retry-After'));
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (isApiError(body)) return new EdgeResnetError(res.status, body.type as ErrorType, body.message, { retryAfter });
  const excerpt = text.trim().slice(0, 200);
  return new EdgeResnetError(res.status, 'unexpected_response', `HTTP ${res.status}${excerpt ? `: ${excerpt}` : ''}`, { retryAfter });
}

function isApiError(body: unknown): body is { code: number; type: string; message: string } {
  if (typeof body !== 'object' || body === null) return false;
  const { type, message } = body as { type?: unknown; message?: unknown };
  return typeof type === 'string' && API_TYPES.has(type) && typeof message === 'string';
}

/** Retry-After as seconds: delta-seconds, or an HTTP date (RFC 9110 10.2.3); undefined otherwise. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

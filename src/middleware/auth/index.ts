import type { Context, MiddlewareHandler } from 'hono';
import { timingSafeEqual } from 'hono/utils/buffer';
import { ApiError } from '../../errors';

export interface ApiKeyOptions {
  /** The expected key for this request's environment; `undefined` turns the check off. */
  key: (c: Context) => string | undefined;
}

/**
 * Requires an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>` when one is
 * configured. The comparison is constant-time, so response timing says nothing about
 * how much of a guessed key was right.
 */
export function apiKey(options: ApiKeyOptions): MiddlewareHandler {
  return async (c, next) => {
    const expected = options.key(c);
    if (expected === undefined || c.req.method === 'OPTIONS') return next();
    const header = c.req.header('Authorization');
    const given = header?.startsWith('Bearer ') ? header.slice(7).trim() : c.req.header('X-API-Key');
    if (!given || !(await timingSafeEqual(given, expected))) {
      c.header('WWW-Authenticate', 'Bearer realm="edge-resnet"');
      throw new ApiError('unauthorized', 'missing or invalid API key');
    }
    return next();
  };
}

/**
 * Request ids and one structured log line per request, for Workers Logs ([observability] in
 * wrangler.toml indexes JSON lines by field, so `status >= 500` or `id = "..."` are queries).
 *
 * The id comes from Hono's request-id middleware: a caller's `X-Request-Id` is kept when it is
 * a sane token (word characters, `-` and `=`, at most 255), otherwise a random UUID is made.
 * Every answer carries it, errors and answers forwarded from other Workers included, and
 * errors log their cause under it (src/errors.ts), so a caller's id finds the cause.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { requestId, type RequestIdVariables } from 'hono/request-id';
import { routePath } from 'hono/route';

export const REQUEST_ID_HEADER = 'X-Request-Id';

export type RequestLogVariables = RequestIdVariables;

/** What one request's log line holds. */
export interface RequestLogLine {
  id: string;
  method: string;
  /** The route pattern that answered (`/predict/:model`), not the path: bounded cardinality. */
  route: string;
  path: string;
  status: number;
  /** Milliseconds, from Server-Timing when the route reports its stages, plus the whole. */
  timings: Record<string, number>;
  model?: string;
  cache?: string;
  bytesIn?: number;
  bytesOut?: number;
}

/** The middleware: the id first, then the log line once the answer (or error answer) exists. */
export function requestLog(options: { log?: (line: RequestLogLine) => void } = {}): MiddlewareHandler {
  const log = options.log ?? ((line) => console.log(JSON.stringify(line)));
  const assignId = requestId({ headerName: REQUEST_ID_HEADER });
  return async (c, next) => {
    const started = performance.now();
    await assignId(c, next);
    const id = c.get('requestId') as string;
    // Hono's middleware set the header before the route ran; an answer the route made as a
    // Response of its own (a forwarded model Worker's, a v2 binary tensor) may lack it.
    if (c.res.headers.get(REQUEST_ID_HEADER) !== id) {
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set(REQUEST_ID_HEADER, id);
    }
    log(lineOf(c, id, performance.now() - started));
  };
}

/** The request id of a request that went through requestLog; undefined outside one. */
export function requestIdOf(c: Context): string | undefined {
  return (c.get as (key: string) => unknown)('requestId') as string | undefined;
}

function lineOf(c: Context, id: string, totalMs: number): RequestLogLine {
  const headers = c.res.headers;
  const line: RequestLogLine = {
    id,
    method: c.req.method,
    route: answeringRoute(c),
    path: c.req.path,
    status: c.res.status,
    timings: { ...serverTimings(headers.get('Server-Timing')), worker: round(totalMs) },
  };
  const model = headers.get('X-Model-Id');
  if (model) line.model = model;
  const cache = headers.get('X-Cache');
  if (cache) line.cache = cache;
  const bytesIn = length(c.req.header('Content-Length'));
  if (bytesIn !== undefined) line.bytesIn = bytesIn;
  const bytesOut = length(headers.get('Content-Length') ?? undefined);
  if (bytesOut !== undefined) line.bytesOut = bytesOut;
  return line;
}

/**
 * The pattern of the handler that answered: after `next()` the router's index rests on the last
 * handler that ran. No route ran for a 404, whose index rests on a `*` middleware: "(none)".
 */
function answeringRoute(c: Context): string {
  const path = routePath(c);
  return path === '*' || path === '/*' || path === '' ? '(none)' : path;
}

/** `name;dur=12.3` entries of a Server-Timing header, by name. */
export function serverTimings(header: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  if (!header) return out;
  for (const entry of header.split(',')) {
    const [name, ...params] = entry.trim().split(';');
    const dur = params.map((p) => p.trim()).find((p) => p.startsWith('dur='));
    const value = dur === undefined ? NaN : Number(dur.slice(4));
    if (name && Number.isFinite(value)) out[name] = value;
  }
  return out;
}

const round = (ms: number) => Math.round(ms * 10) / 10;

function length(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d+$/.test(header)) return undefined;
  return Number(header);
}

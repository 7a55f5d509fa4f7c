/**
 * fetch on a new connection per request, for the load tools that send bursts to a local workerd
 * (burst, heap-burst, soak).
 *
 * Why: workerd's HTTP server closes a kept-alive connection whose next request it has not read
 * within 5 s of the last answer, and under a burst its one thread is busy for longer than that,
 * so a request sent on a reused connection meanwhile is lost to a reset (bench/keepalive-race.ts
 * reproduces it with workerd alone). Deployed Workers are reached through Cloudflare's front
 * line, never on a connection held to the isolate's thread, so a load test that reused
 * connections would count failures of the local server that users of the deployment cannot
 * meet. `connections: 'keep-alive'` (Node's fetch) is still there to show the difference.
 */
import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';

export type Connections = 'keep-alive' | 'close';

/** undici's Agent with pipelining 0 keeps no connection alive. */
let closing: Dispatcher | undefined;

export async function loadFetch(url: string, init: { method?: string; body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal }, connections: Connections = 'close'): Promise<Response> {
  if (connections === 'keep-alive') return fetch(url, init);
  let body: Uint8Array | undefined;
  const headers = { ...init.headers };
  if (init.body !== undefined) {
    // Encoded once by Node's own Response, so that a FormData body and its multipart boundary
    // go together (Node's FormData is another undici's, which undici's fetch would not read).
    const encoded = new Response(init.body);
    const type = encoded.headers.get('content-type');
    if (type && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = type;
    body = new Uint8Array(await encoded.arrayBuffer());
  }
  closing ??= new Agent({ pipelining: 0 });
  const res = await undiciFetch(url, { method: init.method ?? 'GET', headers, ...(body ? { body } : {}), ...(init.signal ? { signal: init.signal } : {}), dispatcher: closing });
  return res as unknown as Response;
}

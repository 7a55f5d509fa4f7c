/**
 * The typed client (client/) against a fake fetch: the requests it sends, how answers and
 * errors come back, Retry-After, timeouts and aborts, waitForJob. Type-level checks tie the
 * client's own answer types to what the Worker's routes answer (`npm run typecheck` fails when
 * they drift). client-build.test.ts checks the built package, client-e2e.test.ts runs the
 * client against wrangler dev.
 */
import type { ExtractSchema } from 'hono/types';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { createClient, EdgeResnetError, type Concept, type ErrorType, type InlinePolicy, type Job, type ModelList, type StoredPolicy } from '../../client/index.js';
import { parseRetryAfter } from '../../client/errors.js';
import type { describeConcept } from '../../src/concepts';
import type { ErrorType as WorkerErrorType } from '../../src/errors';
import type { publicView } from '../../src/jobs/types';
import type { Policy } from '../../src/policies/schema';
import type { modelRoutes } from '../../src/routes/models';
import type { policyRoutes } from '../../src/routes/policies';

const BASE = 'https://api.example';

interface Seen {
  method: string;
  url: URL;
  headers: Headers;
  request: Request;
}

/** A fake fetch answering from `answer`, keeping every request it got. */
function fake(answer: (req: Request, n: number) => Response | Promise<Response>) {
  const seen: Seen[] = [];
  const fetch = async (request: Request) => {
    seen.push({ method: request.method, url: new URL(request.url), headers: request.headers, request: request.clone() });
    return answer(request, seen.length);
  };
  return { fetch, seen };
}

const predictBody = {
  model: { id: 'resnet18v1', version: 'v1', depth: 18, precision: 'int8-qdq', weights: 'synthetic', source: 'synth' },
  notice: 'synthetic',
  images: [{ width: 2, height: 2, predictions: [{ index: 1, synset: 'n01440764', label: 'tench', probability: 0.5 }] }],
  timings: { model: 0, decode: 1, preprocess: 1, inference: 1, total: 3 },
};
const ok = (body: unknown = predictBody, headers: Record<string, string> = { 'X-Cache': 'MISS' }) => Response.json(body, { headers });
const apiError = (status: number, type: string, message: string, headers: Record<string, string> = {}) =>
  Response.json({ code: status, type, message }, { status, headers });

const bytesOf = async (value: unknown) => new Uint8Array(await (value as Blob).arrayBuffer());

describe('requests', () => {
  it('classify(bytes): multipart `data` to /predict, the key as a Bearer token, the answer typed with X-Cache', async () => {
    const { fetch, seen } = fake(() => ok());
    const api = createClient({ baseUrl: `${BASE}/`, apiKey: 'k-123', fetch });
    const result = await api.classify(new Uint8Array([1, 2, 3]));
    expect(seen).toHaveLength(1);
    const [{ method, url, headers, request }] = seen as [Seen];
    expect([method, url.pathname, url.search]).toEqual(['POST', '/predict', '']);
    expect(headers.get('authorization')).toBe('Bearer k-123');
    expect(headers.get('content-type')).toMatch(/^multipart\/form-data; boundary=/);
    const form = await request.formData();
    expect(form.getAll('data')).toHaveLength(1);
    expect([...(await bytesOf(form.get('data')))]).toEqual([1, 2, 3]);
    expect(result).toEqual({ ...predictBody, cache: 'MISS' });
    expectTypeOf(result.images[0]!.predictions[0]!.synset).toEqualTypeOf<string>();
    expectTypeOf(result.model.weights).toEqualTypeOf<'real' | 'synthetic'>();
  });

  it('classify with model, topk and concepts: /predict/:model?topk=&concepts=', async () => {
    const { fetch, seen } = fake(() => ok());
    await createClient({ baseUrl: `${BASE}/v1`, fetch }).classify(new ArrayBuffer(4), { model: 'resnet 50/x', topk: 3, concepts: ['dog', 'n04565375'] });
    const { url, headers } = seen[0]!;
    // A base with a path keeps it; the model id is one path segment whatever it holds.
    expect(url.pathname).toBe('/v1/predict/resnet%2050%2Fx');
    expect(Object.fromEntries(url.searchParams)).toEqual({ topk: '3', concepts: 'dog,n04565375' });
    expect(headers.get('authorization')).toBeNull();
  });

  it('a batch: one `data` file per image, from every kind of bytes (Blob, File, ArrayBuffer, Buffer, a view, a stream)', async () => {
    const { fetch, seen } = fake(() => ok());
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array([7]));
        c.enqueue(new Uint8Array([8, 9]));
        c.close();
      },
    });
    const backing = new Uint8Array([0, 5, 6, 0]);
    await createClient({ baseUrl: BASE, fetch }).classify([
      new Blob([new Uint8Array([1])]),
      new File([new Uint8Array([2])], 'cat.jpg'),
      new Uint8Array([3]).buffer,
      Buffer.from([4]),
      new DataView(backing.buffer, 1, 2),
      stream,
    ]);
    const form = await seen[0]!.request.formData();
    const files = form.getAll('data');
    expect(await Promise.all(files.map(async (f) => [...(await bytesOf(f))]))).toEqual([[1], [2], [3], [4], [5, 6], [7, 8, 9]]);
    expect((files[1] as File).name).toBe('cat.jpg');
  });

  it('{ url }: a JSON body, alone; in a batch it is refused before any request', async () => {
    const { fetch, seen } = fake(() => ok());
    const api = createClient({ baseUrl: BASE, fetch });
    await api.classify({ url: 'https://images.example/cat.jpg' });
    expect(seen[0]!.headers.get('content-type')).toBe('application/json');
    expect(await seen[0]!.request.json()).toEqual({ url: 'https://images.example/cat.jpg' });
    await expect(api.classify([{ url: 'https://x.example/a.jpg' } as never])).rejects.toThrow(TypeError);
    await expect(api.classify([])).rejects.toThrow(/no image/);
    expect(seen).toHaveLength(1);
  });

  it('moderate: a named policy in the path, an inline one as the text field `policy` or beside `url`', async () => {
    const moderateBody = { ...predictBody, policy: { name: 'p', sha256: 'ab' } };
    const { fetch, seen } = fake(() => ok(moderateBody, { 'X-Cache': 'BYPASS' }));
    const api = createClient({ baseUrl: BASE, fetch });
    const policy: InlinePolicy = { name: 'guns', rules: [{ concept: 'firearm', threshold: 0.3, action: 'block' }] };

    const named = await api.moderate(new Uint8Array([1]), { policy: 'weapons' });
    expect(seen[0]!.url.pathname).toBe('/moderate/weapons');
    expect(named.cache).toBe('BYPASS');

    await api.moderate(new Uint8Array([1]), { policy });
    expect(seen[1]!.url.pathname).toBe('/moderate');
    const form = await seen[1]!.request.formData();
    expect(typeof form.get('policy')).toBe('string');
    expect(JSON.parse(form.get('policy') as string)).toEqual(policy);

    await api.moderate({ url: 'https://images.example/a.jpg' }, { policy });
    expect(await seen[2]!.request.json()).toEqual({ url: 'https://images.example/a.jpg', policy });

    await api.moderate(new Uint8Array([1]));
    expect(seen[3]!.url.pathname).toBe('/moderate');
    expect((await seen[3]!.request.formData()).has('policy')).toBe(false);
  });

  it('the GET routes and jobs: paths, queries and bodies', async () => {
    const { fetch, seen } = fake((req) => {
      const path = new URL(req.url).pathname;
      if (path === '/policies') return ok({ policies: ['a', 'b'] });
      if (path === '/jobs' && req.method === 'POST') return Response.json({ id: 'j', status: 'queued' }, { status: 202 });
      return ok({});
    });
    const api = createClient({ baseUrl: BASE, fetch });
    await api.concept('fire arm');
    expect(await api.policies()).toEqual(['a', 'b']);
    await api.policy('weapons');
    await api.models();
    expect(await api.createJob({ url: 'https://images.example/a.jpg', policy: 'weapons', metadata: { n: 1 } })).toEqual({ id: 'j', status: 'queued' });
    await api.getJob('0b0c/..');
    expect(seen.map((s) => `${s.method} ${s.url.pathname}${s.url.search}`)).toEqual([
      'GET /concepts?q=fire+arm',
      'GET /policies',
      'GET /policies/weapons',
      'GET /models',
      'POST /jobs',
      'GET /jobs/0b0c%2F..',
    ]);
    expect(await seen[4]!.request.json()).toEqual({ url: 'https://images.example/a.jpg', policy: 'weapons', metadata: { n: 1 } });
  });

  it('refuses a baseUrl that is not http(s)', () => {
    expect(() => createClient({ baseUrl: 'api.example' })).toThrow(TypeError);
  });
});

describe('errors', () => {
  it('the API error JSON becomes an EdgeResnetError with status, type and message', async () => {
    const { fetch } = fake(() => apiError(415, 'unsupported_media_type', 'not an image'));
    const err = await createClient({ baseUrl: BASE, fetch }).classify(new Uint8Array([1])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdgeResnetError);
    expect(err).toMatchObject({ name: 'EdgeResnetError', status: 415, type: 'unsupported_media_type', message: 'not an image', retryAfter: undefined });
  });

  it('an answer that is not the API JSON: `unexpected_response` with its status and text', async () => {
    const { fetch } = fake(() => new Response('Your worker restarted mid-request', { status: 503 }));
    await expect(createClient({ baseUrl: BASE, fetch }).models()).rejects.toMatchObject({
      status: 503,
      type: 'unexpected_response',
      message: 'HTTP 503: Your worker restarted mid-request',
    });
    const notJson = fake(() => new Response('<html>', { status: 200 }));
    await expect(createClient({ baseUrl: BASE, fetch: notJson.fetch }).models()).rejects.toMatchObject({ status: 200, type: 'unexpected_response' });
  });

  it('fetch failing: `network`, status 0, the cause kept', async () => {
    const cause = new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') });
    const err = await createClient({ baseUrl: BASE, fetch: () => Promise.reject(cause) })
      .models()
      .catch((e: unknown) => e as EdgeResnetError);
    expect(err).toMatchObject({ status: 0, type: 'network', message: 'GET /models: fetch failed: connect ECONNREFUSED' });
    expect((err as EdgeResnetError).cause).toBe(cause);
  });

  it('Retry-After: seconds or an HTTP date', () => {
    expect(parseRetryAfter('5')).toBe(5);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2026-12-02T10:00:00Z');
    expect(parseRetryAfter('Wed, 02 Dec 2026 10:00:03 GMT', now)).toBe(3);
    expect(parseRetryAfter('Wed, 02 Dec 2026 09:00:00 GMT', now)).toBe(0);
  });
});

describe('overloaded, retries, timeouts, aborts', () => {
  const overloaded = (seconds: string) => apiError(503, 'overloaded', 'busy', { 'Retry-After': seconds });

  it('off by default: the 503 is thrown at once with its retryAfter', async () => {
    const { fetch, seen } = fake(() => overloaded('2'));
    await expect(createClient({ baseUrl: BASE, fetch }).classify(new Uint8Array([1]))).rejects.toMatchObject({ status: 503, type: 'overloaded', retryAfter: 2 });
    expect(seen).toHaveLength(1);
  });

  it('with retries: waits Retry-After, then sends the same body again', async () => {
    const { fetch, seen } = fake((_, n) => (n === 1 ? overloaded('1') : ok()));
    const t0 = performance.now();
    const result = await createClient({ baseUrl: BASE, fetch, retries: 2 }).classify(new Uint8Array([4, 2]));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(990);
    expect(result.cache).toBe('MISS');
    expect(seen).toHaveLength(2);
    for (const s of seen) expect([...(await bytesOf((await s.request.formData()).get('data')))]).toEqual([4, 2]);
  });

  it('gives up after `retries`, and never retries other errors', async () => {
    const busy = fake(() => overloaded('0'));
    await expect(createClient({ baseUrl: BASE, fetch: busy.fetch, retries: 2 }).models()).rejects.toMatchObject({ type: 'overloaded' });
    expect(busy.seen).toHaveLength(3);
    const missing = fake(() => apiError(503, 'model_unavailable', 'no model'));
    await expect(createClient({ baseUrl: BASE, fetch: missing.fetch, retries: 2 }).models()).rejects.toMatchObject({ type: 'model_unavailable' });
    expect(missing.seen).toHaveLength(1);
  });

  it('does not wait a Retry-After longer than maxRetryDelayMs or than the time left', async () => {
    const long = fake(() => overloaded('60'));
    const t0 = performance.now();
    await expect(createClient({ baseUrl: BASE, fetch: long.fetch, retries: 3 }).models()).rejects.toMatchObject({ type: 'overloaded', retryAfter: 60 });
    const late = fake(() => overloaded('5'));
    await expect(createClient({ baseUrl: BASE, fetch: late.fetch, retries: 3, timeoutMs: 2000 }).models()).rejects.toMatchObject({ type: 'overloaded' });
    expect(performance.now() - t0).toBeLessThan(500);
    expect([long.seen.length, late.seen.length]).toEqual([1, 1]);
  });

  /** A server that never answers, but lets go when the request is aborted, as fetch does. */
  const hanging = (req: Request) =>
    new Promise<Response>((_, reject) => {
      if (req.signal.aborted) reject(req.signal.reason);
      req.signal.addEventListener('abort', () => reject(req.signal.reason));
    });

  it('timeoutMs: a `timeout` EdgeResnetError, status 0, and the request aborted', async () => {
    const { fetch, seen } = fake(hanging);
    const t0 = performance.now();
    await expect(createClient({ baseUrl: BASE, fetch, timeoutMs: 100 }).models()).rejects.toMatchObject({ status: 0, type: 'timeout' });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(seen[0]!.request.signal.aborted).toBe(true);
  });

  it('the timeout covers reading a stream given as the image: one that never ends is no hang', async () => {
    const { fetch, seen } = fake(() => ok());
    const endless = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(new Uint8Array([1])) });
    await expect(createClient({ baseUrl: BASE, fetch, timeoutMs: 100 }).classify(endless)).rejects.toMatchObject({ type: 'timeout' });
    expect(seen).toHaveLength(0);
  });

  it("the caller's AbortSignal: rejects with its reason, before or during the call", async () => {
    const { fetch } = fake(hanging);
    const api = createClient({ baseUrl: BASE, fetch });
    const controller = new AbortController();
    const pending = api.classify(new Uint8Array([1]), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('user went away')), 20);
    await expect(pending).rejects.toThrow('user went away');
    await expect(api.models({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('waitForJob', () => {
  const job = (status: Job['status']): Job => ({
    id: 'j1',
    status,
    source: { host: 'images.example' },
    createdAt: 't',
    updatedAt: 't',
    attempts: 1,
    delivery: { status: 'none', attempts: 0 },
  });

  it('polls GET /jobs/:id every intervalMs until done or failed, and returns the job', async () => {
    const statuses: Job['status'][] = ['queued', 'running', 'done'];
    const { fetch, seen } = fake((_, n) => ok(job(statuses[n - 1]!)));
    const done = await createClient({ baseUrl: BASE, fetch }).waitForJob('j1', { intervalMs: 10 });
    expect(done.status).toBe('done');
    expect(seen.map((s) => s.url.pathname)).toEqual(['/jobs/j1', '/jobs/j1', '/jobs/j1']);

    const failing = fake(() => ok({ ...job('failed'), reason: 'not an image' }));
    expect(await createClient({ baseUrl: BASE, fetch: failing.fetch }).waitForJob('j1')).toMatchObject({ status: 'failed', reason: 'not an image' });
  });

  it('stops on its timeout or the signal; an error answer is thrown', async () => {
    const forever = fake(() => ok(job('queued')));
    const api = createClient({ baseUrl: BASE, fetch: forever.fetch });
    await expect(api.waitForJob('j1', { intervalMs: 20, timeoutMs: 100 })).rejects.toMatchObject({ type: 'timeout' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stop')), 50);
    await expect(api.waitForJob('j1', { intervalMs: 20, timeoutMs: 0, signal: controller.signal })).rejects.toThrow('stop');
    const gone = fake(() => apiError(404, 'not_found', 'no job j1'));
    await expect(createClient({ baseUrl: BASE, fetch: gone.fetch }).waitForJob('j1')).rejects.toMatchObject({ status: 404, type: 'not_found' });
  });
});

describe('types: the client says what the Worker answers', () => {
  it('checked by tsc (npm run typecheck); nothing to run', () => {
    // What a route's `c.json(...)` answers, as Hono types it (JSON-parsed: what a client reads).
    type JsonOf<R, P extends string> = P extends keyof ExtractSchema<R> ? Extract<ExtractSchema<R>[P], { $get: unknown }>['$get'] extends infer G ? Extract<G, { status: 200 }> extends { output: infer O } ? O : never : never : never;
    expectTypeOf<Job>().toEqualTypeOf<ReturnType<typeof publicView>>();
    expectTypeOf<Concept>().toEqualTypeOf<ReturnType<typeof describeConcept>>();
    expectTypeOf<InlinePolicy>().toEqualTypeOf<Policy>();
    expectTypeOf<Exclude<ErrorType, 'timeout' | 'network' | 'unexpected_response'>>().toEqualTypeOf<WorkerErrorType>();
    expectTypeOf<StoredPolicy>().toEqualTypeOf<JsonOf<typeof policyRoutes, '/policies/:name'>>();
    // Hono widens `available: true` to boolean: the client's narrower union must still fit, field for field.
    type Models = JsonOf<typeof modelRoutes, '/models'>;
    expectTypeOf<ModelList>().toExtend<Models>();
    expectTypeOf<keyof ModelList>().toEqualTypeOf<keyof Models>();
    expectTypeOf<keyof Extract<ModelList['models'][number], { available: true }>>().toEqualTypeOf<keyof Extract<Models['models'][number], { version: unknown }>>();
  });
});

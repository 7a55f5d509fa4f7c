/**
 * The `Classifier` RPC entrypoint inside workerd. Through `exports.Classifier` (a real RPC call
 * over the loopback, arguments and results serialized as for a service binding) with the
 * Worker's own env, and through `new Classifier(ctx, env)` where a test needs other vars (URL
 * hosts, small limits, a shared Admission). Answers are held to what HTTP answers for the same
 * image and options, errors to the code, type and message HTTP gives.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { exports } from 'cloudflare:workers';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import worker from '../../src/index';
import { Classifier } from '../../src/rpc';
import type { ModerateResult, RpcError, RpcResult } from '../../src/rpc/types';
import { policyHash, policyKey, type Policy } from '../../src/policies/schema';
import { call, fixture, form, seedModel, testEnv, type ErrorAnswer, type NativeAnswer } from './helpers';

const base = inject('urlServer');

// entity (n00001740) is above all 1000 classes: its probability is 1 whatever the weights say.
const POLICIES: Policy[] = [
  { name: 'rpc-block', rules: [{ concept: 'entity', threshold: 0.99, action: 'block' }, { concept: 'weapon', threshold: 0, action: 'flag' }] },
  { name: 'rpc-allow', rules: [{ concept: 'weapon', threshold: 1, action: 'block' }] },
];
const INLINE: Policy = { name: 'rpc-inline', rules: [{ concept: 'n00001740', threshold: 0.5, action: 'flag' }] };

let cat: Uint8Array;
let png: Uint8Array;
let catHttp: NativeAnswer;

beforeAll(async () => {
  await seedModel('resnet18v1');
  cat = await fixture('test/fixtures/photos/chelsea.jpg');
  png = await fixture('test/fixtures/photos/camera.png');
  for (const p of POLICIES) await testEnv.MODELS.put(policyKey(p.name), JSON.stringify(p));
  const res = await call('/predict/resnet18v1', { method: 'POST', body: cat });
  expect(res.status).toBe(200);
  catHttp = (await res.json()) as NativeAnswer;
});

/** The entrypoint with `vars` over the Worker's env, called in-process (no serialization). */
async function direct<T>(vars: Partial<Env>, fn: (c: Classifier) => Promise<T>, env?: Env): Promise<T> {
  const ctx = createExecutionContext();
  const result = await fn(new Classifier(ctx, env ?? ({ ...testEnv, ...vars } as Env)));
  await waitOnExecutionContext(ctx);
  return result;
}

/** The answer of a successful call (over RPC the result type also carries the stub's Disposable). */
function ok<R extends RpcResult<object>>(result: R): Extract<R, { ok: true }> {
  if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result.error)}`);
  return result as Extract<R, { ok: true }>;
}

function failed(result: RpcResult<object>, code: number, type: string, message?: RegExp): RpcError {
  expect(result.ok).toBe(false);
  const { error } = result as { ok: false; error: RpcError };
  expect(error).toMatchObject({ code, type });
  if (message) expect(error.message).toMatch(message);
  return error;
}

/** The same failure over HTTP, as its JSON body. */
async function httpError(path: string, body: BodyInit, vars: Partial<Env> = {}, headers: Record<string, string> = {}): Promise<ErrorAnswer> {
  const res = await call(path, { method: 'POST', body, headers }, vars);
  expect(res.ok).toBe(false);
  return (await res.json()) as ErrorAnswer;
}

/** A stream of `bytes` in chunks of `size`, counting the chunks pulled and whether it was cancelled. */
function chunked(bytes: Uint8Array, size: number): { stream: ReadableStream<Uint8Array>; pulled: () => number; cancelled: () => boolean } {
  let offset = 0;
  let pulls = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulls++;
      if (offset >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, pulled: () => pulls, cancelled: () => cancelled };
}

describe('classify over RPC', () => {
  it('answers bytes with the body HTTP gives for the same upload, the synthetic notice included', async () => {
    const result = ok(await exports.Classifier.classify(cat, { model: 'resnet18v1' }));
    expect(result.model).toEqual(catHttp.model);
    expect(result.notice).toBe(catHttp.notice);
    expect(result.notice).toMatch(/synthetic weights/);
    expect(result.images).toEqual(catHttp.images);
    expect(result.images[0]).toMatchObject({ width: 451, height: 300 });
    expect(Object.keys(result.timings).sort()).toEqual(['decode', 'inference', 'model', 'preprocess', 'total']);
    expect(result.timings.total).toBeGreaterThan(0);
  });

  it('takes an ArrayBuffer, a view into a larger buffer, and DEFAULT_MODEL when no model is named', async () => {
    const buffer = ok(await exports.Classifier.classify(cat.slice().buffer));
    expect(buffer.images).toEqual(catHttp.images);
    const padded = new Uint8Array(cat.byteLength + 64);
    padded.set(cat, 32);
    const view = ok(await exports.Classifier.classify(padded.subarray(32, 32 + cat.byteLength)));
    expect(view.images).toEqual(catHttp.images);
  });

  it('reads a stream to its end, chunk by chunk', async () => {
    const source = chunked(cat, 4096);
    const result = ok(await exports.Classifier.classify(source.stream));
    expect(result.images).toEqual(catHttp.images);
  });

  it('applies topk and concepts as /predict?topk=&concepts= does', async () => {
    const res = await call('/predict/resnet18v1?topk=3&concepts=dog,n04565375', { method: 'POST', body: png });
    expect(res.status).toBe(200);
    const http = (await res.json()) as NativeAnswer;
    const result = ok(await exports.Classifier.classify(png, { topk: 3, concepts: ['dog', 'n04565375'] }));
    expect(result.images).toEqual(http.images);
    const [image] = result.images;
    expect(image!.predictions).toHaveLength(3);
    expect(image!.concepts!.map((c) => [c.id, c.classes])).toEqual([['n02084071', 118], ['n04565375', 7]]);
  });

  it('refuses what HTTP refuses, with the same code, type and message (HTTP names the query field)', async () => {
    const text = new TextEncoder().encode('not an image at all');
    const truncated = cat.subarray(0, cat.byteLength >> 2);
    const cases: Array<[Uint8Array, number, string]> = [
      [text, 415, 'unsupported_media_type'],
      [truncated, 422, 'unprocessable_image'],
    ];
    for (const [bytes, code, type] of cases) {
      const error = failed(await exports.Classifier.classify(bytes), code, type);
      expect(error).toEqual(await httpError('/predict', bytes));
    }
    const unknown = failed(await exports.Classifier.classify(cat, { model: 'resnet999v9' }), 404, 'not_found');
    expect(unknown).toEqual(await httpError('/predict/resnet999v9', cat));
    const topk = failed(await exports.Classifier.classify(cat, { topk: 0 }), 400, 'bad_request', /topk must be an integer from 1 to 1000, got "0"/);
    // Over HTTP the same words, named by where the bad value came from (the query: src/openapi).
    expect((await httpError('/predict?topk=0', cat)).message).toBe(`invalid request: query.topk: ${topk.message}`);
    const concept = failed(await exports.Classifier.classify(cat, { concepts: ['dog', 'xyzzyplugh'] }), 404, 'not_found');
    expect(concept).toEqual(await httpError('/predict?concepts=dog,xyzzyplugh', cat));
  });

  it('refuses bad arguments with 400s that say what is wrong', async () => {
    failed(await exports.Classifier.classify(new Uint8Array(0)), 400, 'bad_request', /no image/);
    failed(await exports.Classifier.classify(42 as never), 400, 'bad_request', /bytes \(Uint8Array or ArrayBuffer\), a ReadableStream/);
    failed(await exports.Classifier.classify(cat, { topk: 2.5 }), 400, 'bad_request', /topk/);
    failed(await exports.Classifier.classify(cat, { top_k: 3 } as never), 400, 'bad_request', /unknown option "top_k"/);
    failed(await exports.Classifier.classify(cat, { concepts: 'dog' } as never), 400, 'bad_request', /"concepts" must be a non-empty array/);
    failed(await exports.Classifier.classify(cat, 'resnet18v1' as never), 400, 'bad_request', /options must be an object/);
  });
});

describe('URL input over RPC', () => {
  const vars = { URL_HOSTS: '127.0.0.1', URL_TIMEOUT_MS: '3000' };

  it('fetches { url } and answers as for the same bytes', async () => {
    const result = ok(await direct(vars, (c) => c.classify({ url: `${base}/image/chelsea.jpg` })));
    expect(result.images).toEqual(catHttp.images);
  });

  it('refuses loopback hosts unless URL_HOSTS lists them, and never fetches them', async () => {
    const path = `/never/rpc-${crypto.randomUUID()}`;
    const error = failed(await exports.Classifier.classify({ url: `${base}${path}` }), 400, 'bad_request', /127\.0\.0\.1/);
    expect(error.message).not.toContain(path);
    const hits = (await (await fetch(`${base}/hits?path=${encodeURIComponent(path)}`)).json()) as { count: number };
    expect(hits.count).toBe(0);
    failed(await exports.Classifier.classify({ url: 'ftp://example.com/cat.jpg' }), 400, 'bad_request');
    failed(await exports.Classifier.classify({ url: 7 } as never), 400, 'bad_request', /"url" is missing or not a string/);
  });

  it('maps upstream failures to the HTTP codes: 502, 504, 413', async () => {
    failed(await direct(vars, (c) => c.classify({ url: `${base}/status/500` })), 502, 'bad_gateway', /127\.0\.0\.1:\d+ answered 500/);
    failed(await direct({ ...vars, URL_TIMEOUT_MS: '300' }, (c) => c.classify({ url: `${base}/slow-headers?ms=5000` })), 504, 'gateway_timeout');
    failed(
      await direct({ ...vars, MAX_BODY_BYTES: '100000' }, (c) => c.classify({ url: `${base}/huge/chunked?bytes=300000` })),
      413,
      'payload_too_large',
      /MAX_BODY_BYTES/,
    );
  });
});

describe('limits over RPC', () => {
  it('refuses bytes over MAX_BODY_BYTES with 413', async () => {
    failed(await direct({ MAX_BODY_BYTES: String(cat.byteLength - 1) }, (c) => c.classify(cat)), 413, 'payload_too_large', /MAX_BODY_BYTES/);
    ok(await direct({ MAX_BODY_BYTES: String(cat.byteLength) }, (c) => c.classify(cat)));
  });

  it('stops reading a stream once it passes MAX_BODY_BYTES, and cancels it', async () => {
    const source = chunked(new Uint8Array(1 << 20), 16 * 1024);
    failed(await direct({ MAX_BODY_BYTES: String(100 * 1024) }, (c) => c.classify(source.stream)), 413, 'payload_too_large');
    // 7 chunks pass 100 KiB; a reader that kept going would have pulled all 64.
    expect(source.pulled()).toBeLessThan(12);
    expect(source.cancelled()).toBe(true);
  });

  it('refuses more pixels than MAX_PIXELS before decoding, as HTTP does', async () => {
    const vars = { MAX_PIXELS: '100000' };
    const error = failed(await direct(vars, (c) => c.classify(cat)), 413, 'payload_too_large');
    expect(error).toEqual(await httpError('/predict', cat, vars));
  });

  it('needs no API key: a service binding is already authorised', async () => {
    const vars = { API_KEY: 'rpc-test-secret' };
    expect((await call('/predict', { method: 'POST', body: cat }, vars)).status).toBe(401);
    ok(await direct(vars, (c) => c.classify(cat)));
  });
});

describe('RPC and HTTP share the isolate admission', () => {
  /** A bucket whose model reads hang until released: the first request holds its slot meanwhile. */
  function stallingEnv(): { env: Env; stalled: () => number; open: () => void } {
    const b = testEnv.MODELS;
    const waiting: Array<() => void> = [];
    let isOpen = false;
    const bucket = {
      get: (key: string) =>
        !isOpen && key.endsWith('/model.onnx') ? new Promise((resolve) => waiting.push(() => resolve(b.get(key)))) : b.get(key),
      head: (key: string) => b.head(key),
      list: (options?: R2ListOptions) => b.list(options),
    } as unknown as R2Bucket;
    // A registry per bucket: this one has no session yet, so its first request reads the model
    // (the result cache off: a cached answer would need no model).
    const env = { ...testEnv, MODELS: bucket, MAX_IN_FLIGHT: '1', ADMISSION_WAIT_MS: '50', CACHE_TTL_SECONDS: '0' } as Env;
    return {
      env,
      stalled: () => waiting.length,
      open: () => {
        isOpen = true;
        waiting.splice(0).forEach((go) => go());
      },
    };
  }

  /** Waits (10 s at most) until a model read hangs, i.e. the request holds its slot. */
  async function holding(stalled: () => number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (stalled() === 0) {
      if (Date.now() > deadline) throw new Error('the first request never reached the model read');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  // `/predict/:model`, not `/predict`: app.ts's middleware list names both `/predict` and
  // `/predict/*`, which Hono both matches for `/predict`, so that path takes two slots.
  async function send(env: Env, body: BodyInit): Promise<Response> {
    const ctx = createExecutionContext();
    const res = await worker.fetch(new Request('http://edge.test/predict/resnet18v1', { method: 'POST', body }), env, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  }

  it('an HTTP request holding the only slot makes an RPC call 503 overloaded, and the reverse', async () => {
    const a = stallingEnv();
    const held = send(a.env, cat);
    await holding(a.stalled);
    const busy = failed(await direct({}, (c) => c.classify(cat), a.env), 503, 'overloaded', /all 1 request slots/);
    expect(busy.retryAfter).toBe(1);
    a.open();
    expect((await held).status).toBe(200);
    ok(await direct({}, (c) => c.classify(cat), a.env));

    const b = stallingEnv();
    const rpc = direct({}, (c) => c.classify(cat), b.env);
    await holding(b.stalled);
    const res = await send(b.env, cat);
    expect(res.status).toBe(503);
    expect(res.headers.get('Retry-After')).toBe('1');
    b.open();
    ok(await rpc);
  });
});

describe('result cache over RPC', () => {
  const vars = { CACHE_TTL_SECONDS: '60' };
  /** The photo with bytes of its own after its end: an image no other test (or run) has cached. */
  function unique(image: Uint8Array): Uint8Array {
    const bytes = new Uint8Array(image.byteLength + 16);
    bytes.set(image);
    crypto.getRandomValues(bytes.subarray(image.byteLength));
    return bytes;
  }

  it('shares entries with HTTP both ways, for classify and moderate', async () => {
    const first = unique(cat);
    const res = await call('/predict/resnet18v1', { method: 'POST', body: first }, vars);
    expect(res.headers.get('X-Cache')).toBe('MISS');
    const http = (await res.json()) as NativeAnswer;
    const hit = ok(await direct(vars, (c) => c.classify(first)));
    expect(hit.cache).toBe('HIT');
    expect(hit.images).toEqual(http.images);
    const moderated = ok(await direct(vars, (c) => c.moderate(first, 'rpc-block')));
    expect(moderated.cache).toBe('HIT');
    expect(moderated.images[0]!.predictions).toEqual(http.images[0]!.predictions);

    const second = unique(png);
    const miss = ok(await direct(vars, (c) => c.classify(second)));
    expect(miss.cache).toBe('MISS');
    const again = await call('/predict/resnet18v1', { method: 'POST', body: second }, vars);
    expect(again.headers.get('X-Cache')).toBe('HIT');
    expect(((await again.json()) as NativeAnswer).images).toEqual(miss.images);
  });

  it('answers BYPASS when the cache is off (CACHE_TTL_SECONDS = 0, as in this pool)', async () => {
    expect(ok(await direct({ CACHE_TTL_SECONDS: '0' }, (c) => c.classify(cat))).cache).toBe('BYPASS');
  });
});

describe('moderate over RPC', () => {
  async function httpModerate(path: string, body: BodyInit | object): Promise<Record<string, unknown>> {
    const json = !(body instanceof Uint8Array || body instanceof FormData);
    const res = await call(path, {
      method: 'POST',
      body: json ? JSON.stringify(body) : (body as BodyInit),
      ...(json ? { headers: { 'Content-Type': 'application/json' } } : {}),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  }

  it('applies a named policy: the /moderate/:policy body, the decision and the policy hash', async () => {
    const result = ok(await exports.Classifier.moderate(cat, 'rpc-block'));
    const http = await httpModerate('/moderate/rpc-block', cat);
    expect(result.policy).toEqual({ name: 'rpc-block', sha256: await policyHash(POLICIES[0]!) });
    expect(result.policy).toEqual(http.policy);
    expect(result.model).toEqual(http.model);
    expect(result.images).toEqual(http.images);
    expect(result.notice).toMatch(/synthetic weights/);
    const [image] = result.images;
    expect(image!.decision).toBe('block');
    expect(image!.triggered.map((t) => [t.concept, t.action])).toEqual([['n00001740', 'block'], ['n04565375', 'flag']]);
    expect(image!.predictions).toEqual(catHttp.images[0]!.predictions);

    const allowed = ok(await exports.Classifier.moderate(cat, 'rpc-allow'));
    expect(allowed.images[0]).toMatchObject({ decision: 'allow', triggered: [] });
  });

  it('applies an inline policy as /moderate does with "policy" in the body', async () => {
    const result = ok(await exports.Classifier.moderate(png, INLINE));
    const http = await httpModerate('/moderate', form(png, { field: 'policy', bytes: JSON.stringify(INLINE) }));
    expect(result.policy).toEqual({ name: 'rpc-inline', sha256: await policyHash(INLINE) });
    expect(result.images).toEqual(http.images);
    expect(result.images[0]!.decision).toBe('flag');
  });

  it('uses DEFAULT_POLICY when no policy is given, and says so when it is unset', async () => {
    const unset = failed(await exports.Classifier.moderate(cat), 400, 'bad_request', /DEFAULT_POLICY is not set/);
    expect(unset.message).toMatch(/policy name or an inline policy/);
    const result: ModerateResult = await direct({ DEFAULT_POLICY: 'rpc-allow' }, (c) => c.moderate(cat));
    expect(ok(result).policy.name).toBe('rpc-allow');
  });

  it('refuses unknown and invalid policies as HTTP does, before reading the image', async () => {
    const missing = failed(await exports.Classifier.moderate(cat, 'no-such-policy'), 404, 'not_found');
    expect(missing).toEqual(await httpError('/moderate/no-such-policy', cat));
    const bad = { name: 'x', rules: [{ concept: 'dog', threshold: 2, action: 'block' }] };
    const invalid = failed(await exports.Classifier.moderate(cat, bad as Policy), 400, 'bad_request', /policy\.rules\[0\]\.threshold/);
    expect(invalid).toEqual(await httpError('/moderate', form(cat, { field: 'policy', bytes: JSON.stringify(bad) })));
    // The policy is checked first: a bad policy with no image is still the policy's 400.
    failed(await exports.Classifier.moderate(new Uint8Array(0), bad as Policy), 400, 'bad_request', /threshold/);
    failed(await exports.Classifier.moderate(cat, 12 as never), 400, 'bad_request', /policy must be/);
  });

  it('answers an unexpected failure as an opaque internal error', async () => {
    const broken = {
      ...testEnv,
      MODELS: {
        get: () => Promise.reject(new Error('secret detail of a broken binding')),
        head: () => Promise.reject(new Error('secret detail of a broken binding')),
        list: () => Promise.reject(new Error('secret detail of a broken binding')),
      },
    } as unknown as Env;
    const error = failed(await direct({}, (c) => c.moderate(cat, 'rpc-block'), broken), 500, 'internal');
    expect(error).toEqual({ code: 500, type: 'internal', message: 'internal error' });
  });
});

/**
 * The result cache (src/cache) through the Worker in workerd: MISS then HIT for the same
 * bytes, one entry for every route and option, keys that change with the model's weights,
 * BYPASS when CACHE_TTL_SECONDS is 0, failing backings that never fail a request, KV on
 * *.workers.dev, and a hit path that neither loads a model, decodes nor runs inference.
 *
 * The cache persists across the tests of this file, so every test classifies bytes of its
 * own (`variant`: the same JPEG with a distinct comment segment, hence a distinct SHA-256
 * and the same pixels).
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import worker from '../../src/index';
import { kvStore, modelVersion, resultCacheFor, ResultCache, type ResultStore } from '../../src/cache';
import { ModelRegistry } from '../../src/models/registry';
import { IMAGENET_PREPROCESS, manifestKey, type ModelManifest } from '../../src/models/manifest';
import { call, fixture, form, seedModel, testEnv, type NativeAnswer, isolatedBucket } from './helpers';

/** The cache on, whatever the pool's default; budget lifted for the extra registries below. */
const ON = { CACHE_TTL_SECONDS: '3600', MEMORY_BUDGET_MB: '100000' } as Partial<Env>;
const OFF = { ...ON, CACHE_TTL_SECONDS: '0' } as Partial<Env>;

let cat: Uint8Array;
let coffee: Uint8Array;
let tag = 0;

beforeAll(async () => {
  await seedModel('resnet18v1');
  [cat, coffee] = await Promise.all([fixture('test/fixtures/photos/chelsea.jpg'), fixture('test/fixtures/photos/coffee.jpg')]);
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** `jpeg` with a COM segment right after SOI: other bytes (another cache key), same pixels. */
function variant(jpeg: Uint8Array): Uint8Array {
  const text = new TextEncoder().encode(`cache test ${++tag} ${Math.random()}`);
  const out = new Uint8Array(jpeg.length + 4 + text.length);
  out.set(jpeg.subarray(0, 2));
  out.set([0xff, 0xfe, (text.length + 2) >> 8, (text.length + 2) & 0xff], 2);
  out.set(text, 6);
  out.set(jpeg.subarray(2), 6 + text.length);
  return out;
}

const post = (path: string, body: BodyInit, vars: Partial<Env> = ON, headers: Record<string, string> = {}) =>
  call(path, { method: 'POST', body, headers }, vars);

/** Server-Timing durations by name. */
function serverTiming(res: Response): Record<string, number> {
  const header = res.headers.get('Server-Timing') ?? '';
  return Object.fromEntries([...header.matchAll(/([a-z]+);dur=([\d.]+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

/** The answer without what legitimately differs between a miss and a hit. */
const withoutTimings = ({ timings: _, ...rest }: NativeAnswer) => rest;

/** A request to the Worker under another host name (the default helper's is edge.test). */
async function callAt(url: string, init: RequestInit, vars: Partial<Env>): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(url, init), { ...testEnv, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}


describe('MISS, then HIT for the same bytes', () => {
  it('answers the same body (timings apart) without loading a model, decoding or running inference', async () => {
    const image = variant(cat);
    const miss = await post('/predict/resnet18v1?topk=10', form(image));
    expect(miss.status).toBe(200);
    expect(miss.headers.get('X-Cache')).toBe('MISS');
    const missBody = (await miss.json()) as NativeAnswer;
    expect(missBody.timings.inference).toBeGreaterThan(0);
    expect(missBody.timings.decode).toBeGreaterThan(0);

    const use = vi.spyOn(ModelRegistry.prototype, 'use');
    const hit = await post('/predict/resnet18v1?topk=10', form(image));
    expect(hit.status).toBe(200);
    expect(hit.headers.get('X-Cache')).toBe('HIT');
    expect(use).not.toHaveBeenCalled();
    const hitBody = (await hit.json()) as NativeAnswer;
    expect(withoutTimings(hitBody)).toEqual(withoutTimings(missBody));
    expect(hitBody.images[0]).toMatchObject({ width: 451, height: 300 });
    expect(hitBody.timings).toMatchObject({ model: 0, decode: 0, preprocess: 0, inference: 0 });
    const timing = serverTiming(hit);
    expect(timing).toMatchObject({ model: 0, decode: 0, preprocess: 0, inference: 0 });
    expect(timing.cache).toBeGreaterThanOrEqual(0);
    expect(hit.headers.get('Server-Timing')).toMatch(/cache;dur=[\d.]+;desc="HIT"/);
    // The headers that say which model answered are there on a hit too.
    expect(hit.headers.get('X-Model-Id')).toBe('resnet18v1');
    expect(hit.headers.get('X-Model-Weights')).toBe('synthetic');
  });

  it('gives bit-identical probabilities to an uncached run (the entry is the float32 logits)', async () => {
    const image = variant(coffee);
    const uncached = (await (await post('/predict/resnet18v1?topk=1000&concepts=dog,weapon,entity', image, OFF)).json()) as NativeAnswer;
    expect((await post('/predict/resnet18v1?topk=3', image)).headers.get('X-Cache')).toBe('MISS');
    const res = await post('/predict/resnet18v1?topk=1000&concepts=dog,weapon,entity', image);
    expect(res.headers.get('X-Cache')).toBe('HIT');
    const hit = (await res.json()) as NativeAnswer;
    // toEqual on numbers is exact: every one of the 1000 probabilities and the concept sums.
    expect(hit.images).toEqual(uncached.images);
    expect(hit.images[0]!.predictions).toHaveLength(1000);
  });

  it('a non-image is still refused (415) with the cache on (the header probe runs before the lookup)', async () => {
    const junk = new TextEncoder().encode('not an image at all, just text');
    for (let i = 0; i < 2; i++) {
      const res = await post('/predict', junk);
      expect(res.status).toBe(415);
    }
  });
});

describe('one entry for every route and option', () => {
  it('topk, concepts, the compatibility shapes and /moderate all hit what /predict?topk=1 cached', async () => {
    const image = variant(cat);
    const first = await post('/predict/resnet18v1?topk=1', form(image));
    expect(first.headers.get('X-Cache')).toBe('MISS');
    const top1 = ((await first.json()) as NativeAnswer).images[0]!.predictions[0]!;

    const wide = await post('/predict?topk=20&concepts=dog,n04565375', image);
    expect(wide.headers.get('X-Cache')).toBe('HIT');
    const wideBody = (await wide.json()) as NativeAnswer & { images: Array<{ concepts: Array<{ id: string; probability: number }> }> };
    expect(wideBody.images[0]!.predictions[0]).toEqual(top1);
    expect(wideBody.images[0]!.predictions).toHaveLength(20);
    expect(wideBody.images[0]!.concepts.map((c) => c.id)).toEqual(['n02084071', 'n04565375']);

    const torchserve = await post('/predictions/resnet18v1', form(image));
    expect(torchserve.headers.get('X-Cache')).toBe('HIT');
    expect(Object.values((await torchserve.json()) as Record<string, number>)[0]).toBe(top1.probability);

    const modelServer = await post('/resnet18v1/predict', image);
    expect(modelServer.headers.get('X-Cache')).toBe('HIT');
    expect(((await modelServer.json()) as Array<{ class: string }>)[0]!.class).toBe(`${top1.synset} ${top1.label}`);

    const policy = JSON.stringify({ name: 'cache-test', rules: [{ concept: 'entity', threshold: 0.5, action: 'flag' }] });
    const moderated = await post('/moderate', form(image, { field: 'policy', bytes: policy }));
    expect(moderated.status).toBe(200);
    expect(moderated.headers.get('X-Cache')).toBe('HIT');
    const decision = (await moderated.json()) as { images: Array<{ decision: string; predictions: unknown[]; concepts: Array<{ probability: number }> }> };
    expect(decision.images[0]!.decision).toBe('flag');
    expect(decision.images[0]!.predictions[0]).toEqual(top1);
    // entity is above all 1000 classes: the cached probabilities still sum to 1.
    expect(decision.images[0]!.concepts[0]!.probability).toBeCloseTo(1, 6);
  });

  it('a batch is a HIT only when every image is, and mixes cached and computed images in order', async () => {
    const [a, b] = [variant(cat), variant(coffee)];
    const single = (await (await post('/predict', form(a))).json()) as NativeAnswer;
    const mixed = await post('/predict', form(a, b));
    expect(mixed.headers.get('X-Cache')).toBe('MISS');
    const mixedBody = (await mixed.json()) as NativeAnswer;
    expect(mixedBody.images[0]).toEqual(single.images[0]);
    const alone = (await (await post('/predict', b, OFF)).json()) as NativeAnswer;
    expect(mixedBody.images[1]).toEqual(alone.images[0]);
    const again = await post('/predict', form(a, b));
    expect(again.headers.get('X-Cache')).toBe('HIT');
    expect(((await again.json()) as NativeAnswer).images).toEqual(mixedBody.images);
    const swapped = await post('/predict', form(b, a));
    expect(swapped.headers.get('X-Cache')).toBe('HIT');
    expect(((await swapped.json()) as NativeAnswer).images).toEqual([mixedBody.images[1], mixedBody.images[0]]);
  });
});

describe('the key follows the model', () => {
  it('another model is a MISS; the same weights under another id are a HIT', async () => {
    await seedModel('resnet18v1/fp32', 'resnet34v1');
    await seedModel('resnet18v1', 'cache-copy');
    const image = variant(cat);
    expect((await post('/predict/resnet18v1', image)).headers.get('X-Cache')).toBe('MISS');
    const other = await post('/predict/resnet34v1', image);
    expect(other.status).toBe(200);
    expect(other.headers.get('X-Cache')).toBe('MISS');
    const copy = await post('/predict/cache-copy', image);
    expect(copy.headers.get('X-Cache')).toBe('HIT');
    expect(((await copy.json()) as NativeAnswer).model.id).toBe('cache-copy');
  });

  it('a model uploaded again with other weights is a MISS, then a HIT of its own', async () => {
    await seedModel('resnet18v1', 'cache-swap');
    const image = variant(coffee);
    const before = { ...ON, MODELS: isolatedBucket() } as Partial<Env>;
    expect((await post('/predict/cache-swap', image, before)).headers.get('X-Cache')).toBe('MISS');
    const oldAnswer = await post('/predict/cache-swap', image, before);
    expect(oldAnswer.headers.get('X-Cache')).toBe('HIT');

    await seedModel('resnet18v1/fp32', 'cache-swap');
    const manifest = JSON.parse(await (await testEnv.MODELS.get(manifestKey('cache-swap')))!.text()) as ModelManifest;
    const after = { ...ON, MODELS: isolatedBucket() } as Partial<Env>;
    const swapped = await post('/predict/cache-swap', image, after);
    expect(swapped.headers.get('X-Cache')).toBe('MISS');
    expect(((await swapped.json()) as NativeAnswer).model.precision).toBe(manifest.precision);
    expect((await post('/predict/cache-swap', image, after)).headers.get('X-Cache')).toBe('HIT');
    expect(((await oldAnswer.json()) as NativeAnswer).model.precision).not.toBe(manifest.precision);
  });
});

describe('CACHE_TTL_SECONDS = 0', () => {
  it('answers BYPASS, computes every time and writes nothing', async () => {
    const image = variant(cat);
    for (let i = 0; i < 2; i++) {
      const res = await post('/predict', image, OFF);
      expect(res.headers.get('X-Cache')).toBe('BYPASS');
      expect(((await res.json()) as NativeAnswer).timings.inference).toBeGreaterThan(0);
    }
    const policy = JSON.stringify({ name: 'x', rules: [{ concept: 'dog', threshold: 0.5, action: 'flag' }] });
    const moderated = await post('/moderate', form(image, { field: 'policy', bytes: policy }), OFF);
    expect(moderated.status).toBe(200);
    expect(moderated.headers.get('X-Cache')).toBe('BYPASS');
    // Nothing was written while bypassing.
    expect((await post('/predict', image)).headers.get('X-Cache')).toBe('MISS');
  });

  it('refuses a negative TTL as any misconfigured limit (a 500, logged)', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const res = await post('/predict', variant(cat), { ...ON, CACHE_TTL_SECONDS: '-1' });
    expect(res.status).toBe(500);
  });
});

describe('backings', () => {
  const WORKERS_DEV = 'https://edge-resnet.someone.workers.dev';

  it('on *.workers.dev, KV (RESULTS) is the cache: MISS, then HIT, with the 4000-byte entry in KV', async () => {
    const kv = testEnv.RESULTS;
    const put = vi.spyOn(kv, 'put');
    const image = variant(coffee);
    const init = () => ({ method: 'POST', body: image });
    const miss = await callAt(`${WORKERS_DEV}/predict`, init(), ON);
    expect(miss.headers.get('X-Cache')).toBe('MISS');
    expect(put).toHaveBeenCalledTimes(1);
    const [key, value, options] = put.mock.calls[0]!;
    expect(key).toMatch(/^v\d+\/[0-9a-f]{64}\/[0-9a-f]{64}$/);
    expect((value as ArrayBuffer).byteLength).toBe(4000);
    expect(options).toMatchObject({ expirationTtl: 3600 });
    expect((await kv.get(key, 'arrayBuffer'))?.byteLength).toBe(4000);
    const hit = await callAt(`${WORKERS_DEV}/predict`, init(), ON);
    expect(hit.headers.get('X-Cache')).toBe('HIT');
    expect(withoutTimings((await hit.json()) as NativeAnswer)).toEqual(withoutTimings((await miss.json()) as NativeAnswer));
  });

  it('on *.workers.dev without RESULTS there is no cache: BYPASS', async () => {
    const res = await callAt(`${WORKERS_DEV}/predict`, { method: 'POST', body: variant(cat) }, { ...ON, RESULTS: undefined } as unknown as Partial<Env>);
    expect(res.status).toBe(200);
    expect(res.headers.get('X-Cache')).toBe('BYPASS');
  });

  it('a KV namespace that throws on every call never fails a request: MISS each time, logged', async () => {
    const throwing = {
      getWithMetadata: () => Promise.reject(new Error('KV GET failed: 500 Internal Server Error')),
      put: () => {
        throw new Error('KV PUT failed: 429 Too Many Requests');
      },
    } as unknown as KVNamespace;
    const log = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const image = variant(cat);
    for (let i = 0; i < 2; i++) {
      const res = await callAt(`${WORKERS_DEV}/predict`, { method: 'POST', body: image }, { ...ON, RESULTS: throwing } as Partial<Env>);
      expect(res.status).toBe(200);
      expect(res.headers.get('X-Cache')).toBe('MISS');
    }
    const logged = log.mock.calls.map((c) => String(c[0]));
    expect(logged.some((m) => /kv read .* failed/.test(m))).toBe(true);
    expect(logged.some((m) => /kv write .* failed/.test(m))).toBe(true);
  });

  it('the Cache API throwing on match and put never fails a request either', async () => {
    const cache = caches.default;
    expect(caches.default).toBe(cache); // one object, so spying on it reaches the Worker's calls
    const match = vi.spyOn(cache, 'match').mockRejectedValue(new Error('cache unavailable'));
    const put = vi.spyOn(cache, 'put').mockRejectedValue(new Error('cache unavailable'));
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const image = variant(coffee);
    for (let i = 0; i < 2; i++) {
      const res = await post('/predict', image);
      expect(res.status).toBe(200);
      expect(res.headers.get('X-Cache')).toBe('MISS');
    }
    expect(match).toHaveBeenCalledTimes(2);
    expect(put).toHaveBeenCalledTimes(2);
  });
});

describe('ResultCache and its stores', () => {
  /** An in-memory store that records its calls. */
  function memoryStore(name: string): ResultStore & { data: Map<string, ArrayBuffer>; gets: number } {
    const data = new Map<string, ArrayBuffer>();
    return {
      name,
      data,
      gets: 0,
      async get(key) {
        this.gets++;
        return data.get(key) ?? null;
      },
      async put(key, bytes) {
        data.set(key, bytes);
      },
    };
  }

  it('reads the stores in order and fills the nearer ones from a farther hit', async () => {
    const [near, far] = [memoryStore('near'), memoryStore('far')];
    const pending: Array<Promise<unknown>> = [];
    const cache = new ResultCache({ stores: [near, far], ttlSeconds: 60, waitUntil: (p) => pending.push(p) });
    const logits = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 7);
    far.data.set('k', logits.slice().buffer);
    expect(await cache.get('k', 1000)).toEqual(logits);
    await Promise.all(pending);
    expect(new Float32Array(near.data.get('k')!)).toEqual(logits);
    const farReads = far.gets;
    expect(await cache.get('k', 1000)).toEqual(logits);
    expect(far.gets).toBe(farReads);
  });

  it('ignores an entry of the wrong size, and stores a copy of exactly the row it is given', async () => {
    const store = memoryStore('only');
    const pending: Array<Promise<unknown>> = [];
    const cache = new ResultCache({ stores: [store], ttlSeconds: 60, waitUntil: (p) => pending.push(p), log: () => undefined });
    store.data.set('short', new ArrayBuffer(3996));
    expect(await cache.get('short', 1000)).toBeUndefined();
    const batch = Float32Array.from({ length: 3000 }, (_, i) => i);
    cache.put('row', batch.subarray(1000, 2000));
    await Promise.all(pending);
    expect(store.data.get('row')!.byteLength).toBe(4000);
    expect(new Float32Array(store.data.get('row')!)[0]).toBe(1000);
  });

  it('KV: a TTL under its 60 s minimum is kept by the expiry in the metadata', async () => {
    const store = kvStore(testEnv.RESULTS);
    const bytes = new Float32Array(1000).fill(0.5).buffer;
    await store.put('ttl-test', bytes, 1);
    expect((await store.get('ttl-test'))?.byteLength).toBe(4000);
    const now = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(now + 1500);
    expect(await store.get('ttl-test')).toBeNull();
  });

  it('modelVersion changes with the weights, any stage, the preprocessing or the labels, not with the id', async () => {
    const stage = (sha256: string) => ({ sha256, bytes: 1, input: { name: 'a', type: 'float32' as const, shape: [] }, output: { name: 'b', type: 'float32' as const, shape: [] } });
    const base = {
      id: 'resnet101v1',
      sha256: 'a'.repeat(64),
      preprocess: IMAGENET_PREPROCESS,
      labels: 'imagenet-1k',
      stages: [stage('1'.repeat(64)), stage('2'.repeat(64))],
    } as unknown as ModelManifest;
    const version = await modelVersion(base);
    expect(version).toMatch(/^[0-9a-f]{64}$/);
    expect(await modelVersion({ ...base, id: 'other', notes: { x: 1 } })).toBe(version);
    const changed: ModelManifest[] = [
      { ...base, sha256: 'b'.repeat(64) },
      { ...base, stages: [stage('1'.repeat(64)), stage('3'.repeat(64))] },
      { ...base, stages: undefined },
      { ...base, preprocess: { ...IMAGENET_PREPROCESS, resizeShorter: 288 } },
      { ...base, labels: 'other' as ModelManifest['labels'] },
    ];
    for (const m of changed) expect(await modelVersion(m)).not.toBe(version);
  });

  it('resultCacheFor picks the backing by host: Cache API, KV on *.workers.dev, both without a host (RPC)', () => {
    const env = (vars: Partial<Env>) => ({ ...testEnv, ...vars }) as Env;
    const on = env(ON);
    const backing = (e: Env, host: string | undefined) => resultCacheFor(e, () => undefined, host)?.backing;
    expect(backing(on, 'edge.example.com')).toEqual(['cache-api']);
    expect(backing(on, '127.0.0.1')).toEqual(['cache-api']);
    expect(backing(on, 'edge-resnet.someone.workers.dev')).toEqual(['kv']);
    expect(backing(on, 'EDGE.WORKERS.DEV')).toEqual(['kv']);
    expect(backing(on, 'workers.dev.example.com')).toEqual(['cache-api']);
    expect(backing(on, undefined)).toEqual(['cache-api', 'kv']);
    const noKv = env({ ...ON, RESULTS: undefined } as unknown as Partial<Env>);
    expect(backing(noKv, 'a.workers.dev')).toBeUndefined();
    expect(backing(noKv, undefined)).toEqual(['cache-api']);
    expect(backing(env(OFF), 'edge.example.com')).toBeUndefined();
  });
});

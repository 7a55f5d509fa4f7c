/**
 * Models served by Workers of their own (MODEL_WORKERS, src/middleware/route-model), inside
 * workerd: the front forwards the untouched request over the model's service binding. The
 * bound Worker is a fake that echoes what reached it, or the real app behind a Fetcher with a
 * bucket wrapper of its own, so that it keeps its own registry as a separate isolate would.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import worker from '../../src/index';
import { call, fixture, form, seedModel, testEnv, type ErrorAnswer, type NativeAnswer, isolatedBucket } from './helpers';

/** What reached a fake model Worker. */
interface Echo {
  method: string;
  path: string;
  contentType: string | null;
  sha256: string;
  bytes: number;
}

type FakeWorker = Fetcher & { calls: number };

/** A model Worker that answers what it received: the front must hand over the request as sent. */
function echoWorker(): FakeWorker {
  const fake = {
    calls: 0,
    async fetch(input: RequestInfo | URL, init?: RequestInit) {
      fake.calls++;
      const req = new Request(input, init);
      const body = new Uint8Array(await req.arrayBuffer());
      const echo: Echo = {
        method: req.method,
        path: new URL(req.url).pathname + new URL(req.url).search,
        contentType: req.headers.get('Content-Type'),
        sha256: await sha256(body),
        bytes: body.byteLength,
      };
      return Response.json(echo, { headers: { 'Server-Timing': 'total;dur=1.0', 'X-Echo': 'yes' } });
    },
  };
  return fake as unknown as FakeWorker;
}


/** The real Worker as a model Worker of `model` (wrangler.model-*.toml), in its own "isolate". */
function modelWorker(model: string): FakeWorker {
  const env = { ...testEnv, MODELS: isolatedBucket(), DEFAULT_MODEL: model, MODEL_WORKERS: '', MAX_LOADED_MODELS: '1' };
  const fake = {
    calls: 0,
    env,
    async fetch(input: RequestInfo | URL, init?: RequestInit) {
      fake.calls++;
      const ctx = createExecutionContext();
      const res = await worker.fetch(new Request(input, init), env, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    },
  };
  return fake as unknown as FakeWorker;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  return [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Env overrides for the front: MODEL_WORKERS and bindings that the Env type does not declare. */
const front = (vars: Record<string, unknown>) => vars as Partial<Env>;

let cat: Uint8Array;

beforeAll(async () => {
  await seedModel('resnet18v1');
  await seedModel('resnet34v1');
  cat = await fixture('test/fixtures/photos/chelsea.jpg');
});

describe('forwarding to a model Worker', () => {
  const shapes: Array<[path: string, vars: Record<string, string>]> = [
    ['/predict?topk=3', { DEFAULT_MODEL: 'resnet34v1' }],
    ['/predict/resnet34v1?topk=3', {}],
    ['/predictions/resnet34v1', {}],
    ['/resnet34v1/predict', {}],
    ['/moderate', { DEFAULT_MODEL: 'resnet34v1' }],
    ['/moderate/weapons', { DEFAULT_MODEL: 'resnet34v1' }],
    ['/moderate/predict', { DEFAULT_MODEL: 'resnet34v1' }],
    ['/v2/models/resnet34v1/infer', {}],
    ['/v2/models/resnet34v1/versions/1/infer', {}],
  ];

  for (const [path, vars] of shapes) {
    it(`POST ${path} reaches the bound Worker untouched`, async () => {
      const MODEL_A = echoWorker();
      const body = form(cat, { field: 'policy', bytes: '{"concepts":{}}' });
      const sent = new Request('http://edge.test/', { method: 'POST', body });
      const contentType = sent.headers.get('Content-Type');
      const bytes = new Uint8Array(await sent.arrayBuffer());
      const res = await call(
        path,
        { method: 'POST', body: bytes, headers: { 'Content-Type': contentType! } },
        front({ ...vars, MODEL_WORKERS: 'resnet34v1=MODEL_A', MODEL_A }),
      );
      expect(res.status).toBe(200);
      expect(MODEL_A.calls).toBe(1);
      expect(res.headers.get('X-Echo')).toBe('yes');
      const echo = (await res.json()) as Echo;
      expect(echo).toEqual({ method: 'POST', path, contentType, sha256: await sha256(bytes), bytes: bytes.byteLength });
      // The model Worker's own timing, and the hop to it named by its binding.
      expect(res.headers.get('Server-Timing')).toMatch(/^total;dur=1\.0, forward;desc="MODEL_A";dur=[\d.]+$/);
    });
  }

  it('answers with the real model Worker: its model, its session, none loaded in the front', async () => {
    const MODEL_A = modelWorker('resnet34v1');
    const frontEnv = front({ MODELS: isolatedBucket(), MODEL_WORKERS: 'resnet34v1=MODEL_A', MODEL_A });
    const res = await call('/predict/resnet34v1?topk=3', { method: 'POST', body: form(cat) }, frontEnv);
    expect(res.status).toBe(200);
    expect(res.headers.get('X-Model-Id')).toBe('resnet34v1');
    const answer = (await res.json()) as NativeAnswer;
    expect(answer.model.id).toBe('resnet34v1');
    expect(answer.images[0]!.predictions).toHaveLength(3);

    // The same answer as the model served locally (the model Worker is this code).
    const local = await call('/predict/resnet34v1?topk=3', { method: 'POST', body: form(cat) }, front({ MODELS: isolatedBucket() }));
    const expected = (await local.json()) as NativeAnswer;
    expect(answer.images[0]!.predictions.map((p) => p.index)).toEqual(expected.images[0]!.predictions.map((p) => p.index));

    const loaded = async (res: Response) =>
      ((await res.json()) as { models: Array<{ id: string; loaded: unknown }> }).models.find((m) => m.id === 'resnet34v1')!.loaded;
    expect(await loaded(await call('/models', {}, frontEnv))).toBe(false);
    expect(await loaded(await MODEL_A.fetch('http://model-a/models'))).not.toBe(false);
  });

  it('serves a model not in MODEL_WORKERS here, without calling any model Worker', async () => {
    const MODEL_A = echoWorker();
    const res = await call('/predict/resnet18v1', { method: 'POST', body: form(cat) }, front({ MODEL_WORKERS: 'resnet34v1=MODEL_A', MODEL_A }));
    expect(res.status).toBe(200);
    expect(((await res.json()) as NativeAnswer).model.id).toBe('resnet18v1');
    expect(res.headers.get('Server-Timing')).not.toMatch(/forward/);
    expect(MODEL_A.calls).toBe(0);
  });

  it('checks the API key in the front before forwarding', async () => {
    const MODEL_A = echoWorker();
    const vars = front({ API_KEY: 'sesame', MODEL_WORKERS: 'resnet34v1=MODEL_A', MODEL_A });
    const res = await call('/predict/resnet34v1', { method: 'POST', body: cat, headers: { 'Content-Type': 'image/jpeg' } }, vars);
    expect(res.status).toBe(401);
    expect(MODEL_A.calls).toBe(0);
  });
});

describe('a model Worker that is missing or failing', () => {
  async function expect503(res: Response, message: RegExp): Promise<void> {
    expect(res.status).toBe(503);
    const body = (await res.json()) as ErrorAnswer;
    expect(body).toMatchObject({ code: 503, type: 'model_unavailable' });
    expect(body.message).toMatch(message);
  }

  it('is a 503 naming the binding when it is not bound', async () => {
    const res = await call('/predict/resnet34v1', { method: 'POST', body: form(cat) }, front({ MODEL_WORKERS: 'resnet34v1=MODEL_A' }));
    await expect503(res, /model resnet34v1: its Worker \(MODEL_A\) is not bound.*service binding MODEL_A/);
  });

  it('is a 503 naming the binding when the call fails', async () => {
    const MODEL_A = {
      fetch: () => Promise.reject(new Error('connection reset')),
    } as unknown as Fetcher;
    const res = await call('/predict/resnet34v1', { method: 'POST', body: form(cat) }, front({ MODEL_WORKERS: 'resnet34v1=MODEL_A', MODEL_A }));
    await expect503(res, /model resnet34v1: its Worker \(MODEL_A\) is unreachable: connection reset/);
  });

  it('is a 503 naming the binding and STAGE_TIMEOUT_MS when it hangs', async () => {
    let aborted = false;
    const MODEL_A = {
      fetch: (_input: RequestInfo, init?: RequestInit) =>
        new Promise<Response>((_, reject) => {
          init?.signal?.addEventListener('abort', () => {
            aborted = true;
            reject(init.signal!.reason);
          });
        }),
    } as unknown as Fetcher;
    const started = Date.now();
    const res = await call(
      '/predict/resnet34v1',
      { method: 'POST', body: form(cat) },
      front({ MODEL_WORKERS: 'resnet34v1=MODEL_A', MODEL_A, STAGE_TIMEOUT_MS: '200' }),
    );
    await expect503(res, /model resnet34v1: its Worker \(MODEL_A\) timed out after 200 ms \(STAGE_TIMEOUT_MS\)/);
    expect(aborted).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("passes the model Worker's own error answers through", async () => {
    const MODEL_A = modelWorker('resnet34v1');
    const res = await call(
      '/predict/resnet34v1?topk=0',
      { method: 'POST', body: form(cat) },
      front({ MODEL_WORKERS: 'resnet34v1=MODEL_A', MODEL_A }),
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/topk/);
    expect(MODEL_A.calls).toBe(1);
  });
});

describe('MODEL_WORKERS syntax', () => {
  it('fails loudly: a malformed value is an error on every request, logged with its cause', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      for (const path of ['/predict/resnet18v1', '/predict/resnet34v1']) {
        const res = await call(path, { method: 'POST', body: form(cat) }, front({ MODEL_WORKERS: 'resnet34v1' }));
        expect(res.status).toBe(500);
      }
      // One JSON line per error (src/errors.ts), its cause in words.
      const causes = log.mock.calls.map(([line]) => (JSON.parse(String(line)) as { cause: string }).cause);
      expect(causes).toHaveLength(2);
      for (const cause of causes) expect(cause).toMatch(/MODEL_WORKERS: "resnet34v1" is not one model=binding pair/);
    } finally {
      log.mockRestore();
    }
  });
});

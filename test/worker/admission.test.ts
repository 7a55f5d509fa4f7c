/**
 * Admission control and time limits through the Worker, inside workerd: a fast 503 with
 * Retry-After when the isolate is busy, a request that stops waiting for a stuck model load
 * (and a load that is not memoized once abandoned), a stage Worker that never answers.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import worker from '../../src/index';
import { drainBody } from '../../src/middleware/drain';
import { call, fixture, form, seedModel, testEnv, type ErrorAnswer } from './helpers';

let cat: Uint8Array;

beforeAll(async () => {
  await seedModel('resnet18v1');
  await seedModel('resnet101v1');
  cat = await fixture('test/fixtures/photos/chelsea.jpg');
});

/** Like helpers.call, but with one env object for all calls: one config, one Admission. */
async function send(env: Env, path: string, init: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://edge.test${path}`, init), env, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/**
 * A bucket whose model-file reads hang until `open()`; `open(true)` also lets the reads
 * already hanging go on (else they hang forever, like a lost R2 request).
 */
function stallingBucket(): { bucket: R2Bucket; open: (resume?: boolean) => void; stalled: () => number } {
  const b = testEnv.MODELS;
  let isOpen = false;
  const waiting: Array<() => void> = [];
  const bucket = {
    get: (key: string) => {
      if (!isOpen && key.endsWith('/model.onnx')) {
        return new Promise((resolve) => waiting.push(() => resolve(b.get(key))));
      }
      return b.get(key);
    },
    head: (key: string) => b.head(key),
    list: (options?: R2ListOptions) => b.list(options),
  } as unknown as R2Bucket;
  const open = (resume = false) => {
    isOpen = true;
    if (resume) waiting.splice(0).forEach((go) => go());
  };
  return { bucket, open, stalled: () => waiting.length };
}

describe('admission control', () => {
  it('answers 503 overloaded with Retry-After, fast, when every slot stays busy', async () => {
    // The first request holds the only slot while its model load hangs.
    const stall = stallingBucket();
    const env = { ...testEnv, MODELS: stall.bucket, MAX_IN_FLIGHT: '1', ADMISSION_WAIT_MS: '50' } as Env;
    const first = send(env, '/predict/resnet18v1', { method: 'POST', body: form(cat) });
    while (stall.stalled() === 0) await new Promise((r) => setTimeout(r, 5));
    const started = Date.now();
    const [b, c] = await Promise.all([0, 1].map(() => send(env, '/predict/resnet18v1', { method: 'POST', body: form(cat) })));
    expect(Date.now() - started).toBeLessThan(5_000);
    for (const res of [b!, c!]) {
      expect(res.status).toBe(503);
      expect(res.headers.get('Retry-After')).toBe('1');
      const body = (await res.json()) as ErrorAnswer;
      expect(body).toMatchObject({ code: 503, type: 'overloaded' });
      expect(body.message).toMatch(/all 1 request slots of this isolate stayed busy/);
    }
    // The held request finishes normally, and its slot comes back for the next one.
    stall.open(true);
    expect((await first).status).toBe(200);
    expect((await send(env, '/predict/resnet18v1', { method: 'POST', body: form(cat) })).status).toBe(200);
  });

  it('admits a request once, whatever route patterns it matches: POST /predict with one slot', async () => {
    // `/predict/*` also matches `/predict`; `/moderate/predict` is also `/:model/predict`.
    const env = { ...testEnv, MAX_IN_FLIGHT: '1', ADMISSION_WAIT_MS: '50' } as Env;
    expect((await send(env, '/predict', { method: 'POST', body: form(cat) })).status).toBe(200);
    const inline = JSON.stringify({ name: 'p', rules: [{ concept: 'dog', threshold: 0.5, action: 'flag' }] });
    const moderated = form(cat);
    moderated.append('policy', inline);
    // A policy named "predict" does not exist: 404 from the route, not a 503 from admitting twice.
    const res = await send(env, '/moderate/predict', { method: 'POST', body: form(cat) });
    expect(res.status).toBe(404);
    expect((await send(env, '/moderate', { method: 'POST', body: moderated })).status).toBe(200);
  });

  it('counts the upload itself against the memory budget: a second large body waits, then gets a fast 503', async () => {
    // The first request holds its upload's memory while its model load hangs; the budget has
    // room for one 7 MiB body beside the isolate's heap, not two.
    const stall = stallingBucket();
    const env = { ...testEnv, MODELS: stall.bucket, ADMISSION_WAIT_MS: '100' } as Env;
    const models = (await (await send(env, '/models', { method: 'GET' })).json()) as { isolate: { wasmHeapBytes: number | null } };
    const budgetMB = Math.ceil((models.isolate.wasmHeapBytes ?? 0) / 2 ** 20) + 10;
    const tight = { ...env, MEMORY_BUDGET_MB: String(budgetMB) } as Env;
    const big = new Uint8Array(7 * 2 ** 20);
    big.set(cat);
    const headers = { 'Content-Type': 'image/jpeg', 'Content-Length': String(big.byteLength) };
    const first = send(tight, '/predict/resnet18v1', { method: 'POST', body: big, headers });
    while (stall.stalled() === 0) await new Promise((r) => setTimeout(r, 5));
    const second = await send(tight, '/predict/resnet18v1', { method: 'POST', body: big, headers });
    expect(second.status).toBe(503);
    const body = (await second.json()) as ErrorAnswer;
    expect(body).toMatchObject({ type: 'overloaded' });
    expect(body.message).toMatch(/memory for the upload stayed taken/);
    // The first was admitted and goes on once the model arrives (what it answers then is the
    // decoder's and the decode budget's business: with the model loaded, this budget is tight).
    stall.open(true);
    expect((await first).status).not.toBe(503);
  });

  it('refuses at once an upload that could not fit even in an idle isolate', async () => {
    const env = { ...testEnv, MEMORY_BUDGET_MB: '1' } as Env;
    const res = await send(env, '/predict/resnet18v1', { method: 'POST', body: new Uint8Array(2 * 1024 * 1024), headers: { 'Content-Type': 'image/jpeg', 'Content-Length': String(2 * 1024 * 1024) } });
    expect(res.status).toBe(413);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/upload needs 2 MiB to hold/);
  });

  it('admits everything that fits: with enough slots the same burst is all 200', async () => {
    const env = { ...testEnv, MAX_IN_FLIGHT: '3' } as Env;
    const answers = await Promise.all([0, 1, 2].map(() => send(env, '/predict/resnet18v1', { method: 'POST', body: form(cat) })));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it('refuses with 413 a decode that cannot fit the memory budget beside the model', async () => {
    const res = await call('/predict/resnet18v1', { method: 'POST', body: form(cat) }, { MEMORY_BUDGET_MB: '1' } as Partial<Env>);
    expect(res.status).toBe(413);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/memory budget of 1 MiB/);
  });
});

describe('time limits', () => {
  it('a stuck model load: 503 at REQUEST_TIMEOUT_MS, and the next request after recovery is served', async () => {
    const stall = stallingBucket();
    // Long enough for a real session creation on a busy machine (the load limit is the same).
    const env = { ...testEnv, MODELS: stall.bucket, REQUEST_TIMEOUT_MS: '4000' } as Env;
    const started = Date.now();
    const first = await send(env, '/predict/resnet18v1', { method: 'POST', body: form(cat) });
    expect(first.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(((await first.json()) as ErrorAnswer).message).toMatch(/resnet18v1/);
    expect(stall.stalled()).toBe(1);
    // R2 recovers. The load started a moment after the request's deadline was set, so it is
    // abandoned a moment after the 503; once it is, it is not memoized and the next request
    // loads afresh.
    await new Promise((r) => setTimeout(r, 1000));
    stall.open();
    const second = await send(env, '/predict/resnet18v1', { method: 'POST', body: form(cat) });
    expect(second.status).toBe(200);
  });

  it('a stage Worker that never answers: 503 naming the stage and STAGE_TIMEOUT_MS', async () => {
    const hanging = {
      fetch: (_input: RequestInfo | URL, init?: RequestInit) =>
        new Promise<Response>((_, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason))),
    } as unknown as Fetcher;
    const stall = stallingBucket();
    stall.open(); // a registry of its own (one per bucket object), reading the real files
    const env = { ...testEnv, MODELS: stall.bucket, STAGE_1: hanging, STAGE_2: hanging, STAGE_TIMEOUT_MS: '200' } as Env;
    const res = await send(env, '/predict/resnet101v1', { method: 'POST', body: form(cat) });
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/stage 1 \(STAGE_1\) timed out after 200 ms \(STAGE_TIMEOUT_MS\)/);
  });
});

describe('draining an unread upload in workerd', () => {
  it('reads a request body as a byte stream, through one buffer', async () => {
    const upload = () => new Request('http://localhost/predict', { method: 'POST', body: new Uint8Array(3 << 20).fill(7) });
    // workerd's request bodies take a BYOB reader: the drain's one-buffer path is the one taken.
    const probe = upload().body!.getReader({ mode: 'byob' });
    const first = await probe.read(new Uint8Array(64 * 1024));
    expect(first.done).toBe(false);
    expect(first.value!.byteLength).toBeGreaterThan(0);
    expect(first.value!.buffer.byteLength).toBe(64 * 1024);
    await probe.cancel();
    expect(await drainBody(upload().body!, 4 << 20, Date.now() + 10_000)).toBe('drained');
    expect(await drainBody(upload().body!, 1 << 20, Date.now() + 10_000)).toBe('too-long');
  });
});

/**
 * Faults in what the Worker depends on, each injected through a thin wrapper over the R2
 * binding (or a stage Worker's Fetcher): every one answers 503 naming its cause, a failed
 * load is not memoized, and the request after the fault is fixed succeeds with no restart.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { manifestKey, modelKey } from '../../src/models/manifest';
import { call, fixture, form, seedModel, testEnv, type ErrorAnswer } from './helpers';

type Fault = (key: string) => 'throw' | 'break-stream' | null;

/**
 * The test bucket with faults: `fault(key)` decides per read whether R2 throws, or hands out
 * an object whose body breaks mid-read. A distinct wrapper is a distinct registry (one per
 * bucket binding), as a fresh isolate would have.
 */
function faultyBucket(): { bucket: R2Bucket; set: (f: Fault) => void } {
  const b = testEnv.MODELS;
  let fault: Fault = () => null;
  const broken = (object: R2ObjectBody): R2ObjectBody =>
    new Proxy(object, {
      get(target, prop) {
        if (prop === 'arrayBuffer' || prop === 'text') {
          return async () => {
            // Read part of the real body, then fail as a dropped connection would.
            const reader = target.body.getReader();
            await reader.read();
            await reader.cancel();
            throw new Error('Network connection lost.');
          };
        }
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const bucket = {
    get: async (key: string) => {
      const f = fault(key);
      if (f === 'throw') throw new Error('R2 internal error (10001)');
      const object = await b.get(key);
      return object && f === 'break-stream' ? broken(object) : object;
    },
    head: async (key: string) => {
      if (fault(key) === 'throw') throw new Error('R2 internal error (10001)');
      return b.head(key);
    },
    list: (options?: R2ListOptions) => b.list(options),
  } as unknown as R2Bucket;
  return { bucket, set: (f) => void (fault = f) };
}

let cat: Uint8Array;
let good: Uint8Array;
let goodManifest: string;

beforeAll(async () => {
  await seedModel('resnet18v1', 'resnet34v1');
  cat = await fixture('test/fixtures/photos/chelsea.jpg');
  good = await fixture('models/out/test/resnet18v1/int8/model.onnx');
  goodManifest = (await (await testEnv.MODELS.get(manifestKey('resnet34v1')))!.text());
});

/**
 * Every wrapper is a registry with sessions of its own, all in the one onnxruntime heap of
 * this test isolate, which soon passes what admission control allows a real isolate (one
 * registry): the budget is lifted here, it is tested in admission.test.ts.
 */
const UNMETERED = { MEMORY_BUDGET_MB: '100000' } as Partial<Env>;

async function predict(bucket: R2Bucket): Promise<{ status: number; message: string }> {
  const res = await call('/predict/resnet34v1', { method: 'POST', body: form(cat) }, { ...UNMETERED, MODELS: bucket } as Partial<Env>);
  const body = res.status === 200 ? { message: '' } : ((await res.json()) as ErrorAnswer);
  return { status: res.status, message: body.message };
}

describe('R2 faults: 503 naming the cause, then recovery without a restart', () => {
  it('the model file missing', async () => {
    const { bucket } = faultyBucket();
    await testEnv.MODELS.delete(modelKey('resnet34v1'));
    expect(await predict(bucket)).toMatchObject({ status: 503, message: expect.stringMatching(/model\.onnx is missing from the bucket/) });
    await testEnv.MODELS.put(modelKey('resnet34v1'), good);
    expect((await predict(bucket)).status).toBe(200);
  });

  it('the model file truncated', async () => {
    const { bucket } = faultyBucket();
    await testEnv.MODELS.put(modelKey('resnet34v1'), good.subarray(0, good.length - 1000));
    expect(await predict(bucket)).toMatchObject({ status: 503, message: expect.stringMatching(/has \d+ bytes, manifest says \d+/) });
    await testEnv.MODELS.put(modelKey('resnet34v1'), good);
    expect((await predict(bucket)).status).toBe(200);
  });

  it('the manifest not JSON', async () => {
    const { bucket } = faultyBucket();
    await testEnv.MODELS.put(manifestKey('resnet34v1'), '{"id": "resnet34v1", oops');
    expect(await predict(bucket)).toMatchObject({ status: 503, message: expect.stringMatching(/manifest\.json/) });
    await testEnv.MODELS.put(manifestKey('resnet34v1'), goodManifest);
    expect((await predict(bucket)).status).toBe(200);
  });

  it('the manifest not matching its schema', async () => {
    const { bucket } = faultyBucket();
    await testEnv.MODELS.put(manifestKey('resnet34v1'), JSON.stringify({ ...JSON.parse(goodManifest), sha256: 42 }));
    expect(await predict(bucket)).toMatchObject({ status: 503, message: expect.stringMatching(/manifest\.json/) });
    await testEnv.MODELS.put(manifestKey('resnet34v1'), goodManifest);
    expect((await predict(bucket)).status).toBe(200);
  });

  it('R2 throwing on the manifest read, and on the model read', async () => {
    const { bucket, set } = faultyBucket();
    set((key) => (key.endsWith('manifest.json') ? 'throw' : null));
    expect(await predict(bucket)).toMatchObject({ status: 503, message: expect.stringMatching(/manifest\.json: reading from R2 failed; retry shortly$/) });
    set((key) => (key.endsWith('model.onnx') ? 'throw' : null));
    expect(await predict(bucket)).toMatchObject({ status: 503, message: expect.stringMatching(/model\.onnx: reading from R2 failed/) });
    set(() => null);
    expect((await predict(bucket)).status).toBe(200);
  });

  it('the model body breaking mid-stream', async () => {
    const { bucket, set } = faultyBucket();
    set((key) => (key.endsWith('model.onnx') ? 'break-stream' : null));
    expect(await predict(bucket)).toMatchObject({ status: 503, message: expect.stringMatching(/model\.onnx: reading from R2 failed; retry shortly$/) });
    set(() => null);
    expect((await predict(bucket)).status).toBe(200);
  });

  it('/ping and /models say 503 when R2 fails, not 500', async () => {
    const { bucket, set } = faultyBucket();
    set(() => 'throw');
    const ping = await call('/ping', {}, { MODELS: bucket } as Partial<Env>);
    expect(ping.status).toBe(503);
    const one = await call('/models/resnet34v1', {}, { MODELS: bucket } as Partial<Env>);
    expect(one.status).toBe(503);
    expect(((await one.json()) as ErrorAnswer).message).toMatch(/reading from R2 failed/);
  });
});

describe('a stage Worker failing in the middle of a batch', () => {
  it('503 naming the stage; the next batch succeeds once the stage is back', async () => {
    await seedModel('resnet101v1');
    const { createStageApp } = await import('../../src/stages/server');
    const { createExecutionContext, waitOnExecutionContext } = await import('cloudflare:test');
    const app = createStageApp();
    let failing = true;
    const stage = {
      async fetch(input: RequestInfo | URL, init?: RequestInit) {
        if (failing) return Response.json({ code: 500, type: 'internal', message: 'internal error' }, { status: 500 });
        const ctx = createExecutionContext();
        const res = await app.fetch(new Request(input, init), testEnv, ctx);
        await waitOnExecutionContext(ctx);
        return res;
      },
    } as unknown as Fetcher;
    const { bucket } = faultyBucket();
    const vars = { ...UNMETERED, MODELS: bucket, STAGE_1: stage, STAGE_2: stage } as Partial<Env>;
    const batch = () => call('/predict/resnet101v1', { method: 'POST', body: form(cat, cat, cat) }, vars);
    const failed = await batch();
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as ErrorAnswer).message).toMatch(/stage 1 \(STAGE_1\) failed \(500\)/);
    failing = false;
    expect((await batch()).status).toBe(200);
  });
});

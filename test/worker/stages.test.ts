/**
 * Split models inside workerd: the front Worker runs stage 0 and calls the stage Workers over
 * their service bindings. Here each "stage Worker" is the real stage app (src/stages/server.ts)
 * behind a Fetcher, with a bucket wrapper of its own so that it keeps its own registry, as a
 * separate isolate would; test/node/e2e.test.ts runs them as separate Workers under wrangler dev.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { stageKey } from '../../src/models/manifest';
import { createStageApp } from '../../src/stages/server';
import { call, fixture, form, seedModel, testEnv, type ErrorAnswer, type NativeAnswer, isolatedBucket } from './helpers';


const stageApp = createStageApp();

/** A service binding to a stage Worker with its own registry; `calls` counts what reached it. */
function stageWorker(): Fetcher & { calls: number } {
  const env = { ...testEnv, MODELS: isolatedBucket() };
  const worker = {
    calls: 0,
    async fetch(input: RequestInfo | URL, init?: RequestInit) {
      worker.calls++;
      const ctx = createExecutionContext();
      const res = await stageApp.fetch(new Request(input, init), env, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    },
  };
  return worker as unknown as Fetcher & { calls: number };
}

async function stageCall(path: string, init: RequestInit): Promise<Response> {
  return stageWorker().fetch(`https://stage${path}`, init);
}

let cat: Uint8Array;
let coffee: Uint8Array;

beforeAll(async () => {
  // The same int8 weights twice: split in three stages, and whole.
  await seedModel('resnet101v1');
  await seedModel('resnet101v1/int8', 'resnet101v2');
  const whole = JSON.parse(new TextDecoder().decode(await fixture('models/out/test/resnet101v1/int8/manifest.json')));
  delete whole.stages;
  await testEnv.MODELS.put('models/resnet101v2/manifest.json', JSON.stringify({ ...whole, id: 'resnet101v2' }));
  await seedModel('resnet50v2');
  await seedModel('resnet18v2');
  [cat, coffee] = await Promise.all([fixture('test/fixtures/photos/chelsea.jpg'), fixture('test/fixtures/photos/coffee.jpg')]);
});

describe('a model split in stages', () => {
  const front = { MODELS: isolatedBucket(), STAGE_1: stageWorker(), STAGE_2: stageWorker() };

  it('answers exactly as the whole model does, every stage running in its own Worker', async () => {
    const staged = await call('/predict/resnet101v1?topk=10', { method: 'POST', body: form(cat, coffee) }, front as Partial<Env>);
    expect(staged.status).toBe(200);
    const whole = await call('/predict/resnet101v2?topk=10', { method: 'POST', body: form(cat, coffee) }, front as Partial<Env>);
    expect(whole.status).toBe(200);
    const [a, b] = [(await staged.json()) as NativeAnswer, (await whole.json()) as NativeAnswer];
    expect(a.images.map((i) => i.predictions.map((p) => p.index))).toEqual(b.images.map((i) => i.predictions.map((p) => p.index)));
    a.images.forEach((image, i) =>
      image.predictions.forEach((p, j) => expect(p.probability).toBeCloseTo(b.images[i]!.predictions[j]!.probability, 6)),
    );
    // One batch of two is one call per later stage.
    expect([front.STAGE_1.calls, front.STAGE_2.calls]).toEqual([1, 1]);
  });

  it('hands over v2 float activations as well', async () => {
    const res = await call('/resnet50v2/predict', { method: 'POST', body: form(cat) }, front as Partial<Env>);
    expect(res.status).toBe(200);
    expect(((await res.json()) as unknown[]).length).toBe(5);
  });

  it('says in /models where each stage runs and what heap each isolate holds', async () => {
    expect((await call('/predict/resnet101v1', { method: 'POST', body: form(cat) }, front as Partial<Env>)).status).toBe(200);
    const res = await call('/models/resnet101v1', {}, front as Partial<Env>);
    const body = (await res.json()) as { stages: number; loaded: { isolates: Array<{ stage: number; isolate: string; wasmHeapBytes: number }> } };
    expect(body.stages).toBe(3);
    expect(body.loaded.isolates.map((i) => [i.stage, i.isolate])).toEqual([[0, 'this'], [1, 'STAGE_1'], [2, 'STAGE_2']]);
    for (const i of body.loaded.isolates) expect(i.wasmHeapBytes).toBeGreaterThan(1 << 20);
  });
});

describe('split models: deployment errors are 503s that name the culprit', () => {
  it('a missing service binding', async () => {
    const res = await call('/predict/resnet101v1', { method: 'POST', body: form(cat) }, { MODELS: isolatedBucket(), STAGE_1: stageWorker(), STAGE_2: undefined } as Partial<Env>);
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/runs in 3 stages and needs the service binding STAGE_2/);
  });

  it('a stage Worker that is unreachable', async () => {
    const down = { fetch: () => Promise.reject(new Error('connection refused')) } as unknown as Fetcher;
    const res = await call('/predict/resnet101v1', { method: 'POST', body: form(cat) }, { MODELS: isolatedBucket(), STAGE_1: stageWorker(), STAGE_2: down } as Partial<Env>);
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/stage 2 \(STAGE_2\) is unreachable: connection refused/);
  });

  it('a stage file missing from the bucket, reported by the stage Worker', async () => {
    const bucket = isolatedBucket();
    const missing = { ...bucket, get: (key: string) => (key === stageKey('resnet101v1', 1) ? Promise.resolve(null) : testEnv.MODELS.get(key)) } as R2Bucket;
    const stage1 = stageWorker();
    const broken = {
      fetch: (input: RequestInfo | URL, init?: RequestInit) => createStageApp().fetch(new Request(input, init), { ...testEnv, MODELS: missing }, createExecutionContext()),
    } as unknown as Fetcher;
    const res = await call('/predict/resnet101v1', { method: 'POST', body: form(cat) }, { MODELS: isolatedBucket(), STAGE_1: broken, STAGE_2: stage1 } as Partial<Env>);
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/stage 1 \(STAGE_1\) failed \(503\): model resnet101v1: stage 1 is missing from the bucket/);
  });
});

type Spec = { sha256: string; input: { type: string; shape: Array<number | string> } };
const stagesOf = async (model: string): Promise<Spec[]> =>
  JSON.parse(new TextDecoder().decode(await fixture(`models/out/test/${model}/int8/manifest.json`))).stages;
const tensorOf = (stage: Spec, batch: number) => {
  const dims = [batch, ...(stage.input.shape.slice(1) as number[])];
  return {
    method: 'POST',
    headers: { 'X-Tensor-Type': stage.input.type, 'X-Tensor-Dims': dims.join(','), 'X-Stage-Sha256': stage.sha256 },
    body: new Uint8Array(dims.reduce((a, b) => a * b, 1) * (stage.input.type === 'uint8' ? 1 : 4)),
  };
};

describe('the stage Worker refuses what is not its stage', () => {
  let stage: Spec;
  const tensor = (type: string, dims: number[], bytes: number) => ({
    method: 'POST',
    headers: { 'X-Tensor-Type': type, 'X-Tensor-Dims': dims.join(','), 'X-Stage-Sha256': stage.sha256 },
    body: new Uint8Array(bytes),
  });
  let spec: Spec['input'];

  beforeAll(async () => {
    stage = (await stagesOf('resnet101v1'))[1]!;
    spec = stage.input;
  });
  const dims = (batch: number) => [batch, ...(spec.shape.slice(1) as number[])];
  const size = (batch: number) => dims(batch).reduce((a, b) => a * b, 1);

  it('runs a well-formed tensor and answers one', async () => {
    const res = await stageCall('/models/resnet101v1/stages/1', tensor(spec.type, dims(2), size(2)));
    expect(res.status).toBe(200);
    expect(res.headers.get('X-Tensor-Dims')!.split(',')[0]).toBe('2');
    expect(Number(res.headers.get('X-Wasm-Heap-Bytes'))).toBeGreaterThan(0);
    expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
  });

  it.each([
    ['the wrong type', () => tensor('float32', dims(1), size(1) * 4), /type float32, expected uint8/],
    ['the wrong shape', () => tensor('uint8', [1, 3, 224, 224], 3 * 224 * 224), /dims \[1,3,224,224\], expected/],
    ['a batch over MAX_IMAGES', () => tensor('uint8', dims(9), size(9)), /batch of at most 8/],
    ['a body of the wrong length', () => tensor('uint8', dims(1), size(1) - 1), /bytes, dims .* need/],
    ['no tensor headers', () => ({ method: 'POST', headers: { 'X-Stage-Sha256': stage.sha256 }, body: 'x' }), /type missing/],
  ])('400 for %s', async (_, init, message) => {
    const res = await stageCall('/models/resnet101v1/stages/1', init() as RequestInit);
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(message);
  });

  it('400 without the stage version; 503 for a version the bucket does not hold', async () => {
    const unversioned = tensor(spec.type, dims(1), size(1));
    delete (unversioned.headers as Record<string, string>)['X-Stage-Sha256'];
    const res = await stageCall('/models/resnet101v1/stages/1', unversioned);
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/X-Stage-Sha256 is missing/);
    const stale = tensor(spec.type, dims(1), size(1));
    (stale.headers as Record<string, string>)['X-Stage-Sha256'] = '0'.repeat(64);
    const res2 = await stageCall('/models/resnet101v1/stages/1', stale);
    expect(res2.status).toBe(503);
    expect(((await res2.json()) as ErrorAnswer).message).toMatch(/stage 1 in the bucket is not the version the front Worker runs/);
  });

  it('404 for a stage the model does not have, an unknown model or route', async () => {
    for (const path of ['/models/resnet101v1/stages/3', '/models/resnet18v2/stages/1', '/models/nope/stages/1', '/predict']) {
      const res = await stageCall(path, tensor('uint8', dims(1), size(1)));
      expect(res.status, path).toBe(404);
    }
  });
});

describe('a split model uploaded again', () => {
  it('is reloaded by a stage Worker when the front asks for the new version', async () => {
    const worker = stageWorker();
    const [v1, v2] = [(await stagesOf('resnet101v1'))[1]!, (await stagesOf('resnet50v2'))[1]!];
    await seedModel('resnet101v1/int8', 'resnet152v2');
    expect((await worker.fetch('https://stage/models/resnet152v2/stages/1', tensorOf(v1, 1))).status).toBe(200);
    // Another model under the same id: its stage 1 takes another tensor, and only it may run now.
    await seedModel('resnet50v2/int8', 'resnet152v2');
    const res = await worker.fetch('https://stage/models/resnet152v2/stages/1', tensorOf(v2, 1));
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get('X-Tensor-Type')).toBe('float32');
    expect((await worker.fetch('https://stage/models/resnet152v2/stages/1', tensorOf(v1, 1))).status).toBe(503);
  });
});

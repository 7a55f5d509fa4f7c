/** The model registry against local R2: loading, verification, failure and recovery, concurrency. */
import { describe, expect, it } from 'vitest';
import { manifestKey, modelKey } from '../../src/models/manifest';
import { ModelRegistry } from '../../src/models/registry';
import { call, fixture, form, seedModel, testEnv, TEST_MODELS, type ErrorAnswer, type NativeAnswer } from './helpers';

const cat = () => fixture('test/fixtures/photos/chelsea.jpg');

/** Counts the model files read from R2, to see how often a session is created. */
function countingBucket(bucket: R2Bucket): { bucket: R2Bucket; modelReads: () => number } {
  let reads = 0;
  const counting = new Proxy(bucket, {
    get(target, prop) {
      if (prop === 'get') {
        return (key: string, ...rest: unknown[]) => {
          if (key.endsWith('/model.onnx')) reads++;
          return (target.get as (k: string, ...r: unknown[]) => unknown).call(target, key, ...rest);
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { bucket: counting, modelReads: () => reads };
}

describe('model registry', () => {
  it('503 for a zoo model that is not in the bucket', async () => {
    const res = await call('/predict/resnet101v1', { method: 'POST', body: await cat() });
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/resnet101v1 is not in the bucket/);
  });

  it('503 when model.onnx fails its sha256 check, then serves once the file is fixed', async () => {
    await seedModel('resnet18v2', 'resnet34v2');
    const good = await fixture(`${TEST_MODELS}/resnet18v2/fp32/model.onnx`);
    const bad = good.slice();
    bad[bad.length - 10]! ^= 0xff;
    await testEnv.MODELS.put(modelKey('resnet34v2'), bad);
    const first = await call('/predict/resnet34v2', { method: 'POST', body: await cat() });
    expect(first.status).toBe(503);
    expect(((await first.json()) as ErrorAnswer).message).toMatch(/sha256/);

    // The failed load was not memoized: the next request after the fix succeeds.
    await testEnv.MODELS.put(modelKey('resnet34v2'), good);
    const second = await call('/predict/resnet34v2', { method: 'POST', body: await cat() });
    expect(second.status).toBe(200);
  });

  it('503 for a manifest that does not describe a usable model', async () => {
    await seedModel('resnet18v2', 'resnet50v2');
    await testEnv.MODELS.put(manifestKey('resnet50v2'), JSON.stringify({ id: 'resnet50v2', weights: 'synthetic' }));
    const res = await call('/predict/resnet50v2', { method: 'POST', body: await cat() });
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/manifest\.json/);
  });

  it('503 when the bytes verify but are not a model onnxruntime can load', async () => {
    const junk = new TextEncoder().encode('definitely not protobuf');
    const digest = [...new Uint8Array(await crypto.subtle.digest('SHA-256', junk))].map((b) => b.toString(16).padStart(2, '0')).join('');
    await seedModel('resnet18v2', 'resnet101v2');
    const manifest = JSON.parse(await (await testEnv.MODELS.get(manifestKey('resnet101v2')))!.text()) as Record<string, unknown>;
    await testEnv.MODELS.put(modelKey('resnet101v2'), junk);
    await testEnv.MODELS.put(manifestKey('resnet101v2'), JSON.stringify({ ...manifest, sha256: digest, bytes: junk.length }));
    const res = await call('/predict/resnet101v2', { method: 'POST', body: await cat() });
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/session creation failed/);
  });

  it('creates one session for many concurrent requests, and answers them all alike', async () => {
    await seedModel('resnet18v2');
    const { bucket, modelReads } = countingBucket(testEnv.MODELS);
    const image = await cat();
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        call('/predict/resnet18v2', { method: 'POST', body: image }, { MODELS: bucket }).then(async (r) => {
          expect(r.status).toBe(200);
          return (await r.json()) as NativeAnswer;
        }),
      ),
    );
    expect(modelReads()).toBe(1);
    for (const a of answers) expect(a.images).toEqual(answers[0]!.images);
  });

  it('keeps at most MAX_LOADED_MODELS sessions, releasing the least recently used', async () => {
    await seedModel('resnet18v2');
    await seedModel('resnet18v2', 'resnet34v1');
    const registry = new ModelRegistry(testEnv.MODELS, 1);
    await registry.use('resnet18v2', async () => undefined);
    expect(registry.loaded().map((m) => m.manifest.id)).toEqual(['resnet18v2']);
    // A model in use is not released under its user's feet.
    await registry.use('resnet18v2', async ({ session }) => {
      await registry.use('resnet34v1', async () => undefined);
      const out = await session.run({ type: 'float32', data: new Float32Array(3 * 224 * 224), dims: [1, 3, 224, 224] });
      expect(out.dims).toEqual([1, 1000]);
    });
    expect(registry.loaded().map((m) => m.manifest.id)).toEqual(['resnet34v1']);
  });
});

describe('models with a fixed batch dimension', () => {
  it('runs a batch of three through a batch-1 model in chunks, same answers as one by one', async () => {
    await seedModel('resnet34v1');
    const photos = await Promise.all(['chelsea.jpg', 'coffee.jpg', 'rocket.jpg'].map((f) => fixture(`test/fixtures/photos/${f}`)));
    const batch = await call('/predict/resnet34v1?topk=3', { method: 'POST', body: form(...photos) });
    expect(batch.status).toBe(200);
    const answer = (await batch.json()) as NativeAnswer;
    expect(answer.images).toHaveLength(3);
    for (const [i, photo] of photos.entries()) {
      const single = (await (await call('/predict/resnet34v1?topk=3', { method: 'POST', body: photo })).json()) as NativeAnswer;
      expect(answer.images[i]!.predictions.map((p) => p.index)).toEqual(single.images[0]!.predictions.map((p) => p.index));
    }
  });
});

describe('session settings from the manifest', () => {
  it('serves a model with weight pre-packing disabled, with the same answers', async () => {
    await seedModel('resnet18v2');
    await seedModel('resnet18v2', 'resnet152v1');
    const manifest = JSON.parse(await (await testEnv.MODELS.get(manifestKey('resnet152v1')))!.text()) as Record<string, unknown>;
    await testEnv.MODELS.put(manifestKey('resnet152v1'), JSON.stringify({ ...manifest, session: { disablePrepacking: true } }));
    const image = await cat();
    const [packed, unpacked] = await Promise.all(
      ['resnet18v2', 'resnet152v1'].map(async (id) => {
        const res = await call(`/predict/${id}?topk=5`, { method: 'POST', body: image });
        expect(res.status).toBe(200);
        return ((await res.json()) as NativeAnswer).images[0]!.predictions;
      }),
    );
    expect(unpacked!.map((p) => p.index)).toEqual(packed!.map((p) => p.index));
    unpacked!.forEach((p, i) => expect(p.probability).toBeCloseTo(packed![i]!.probability, 5));
  });

  it('503 for a manifest with malformed session settings', async () => {
    await seedModel('resnet18v2', 'resnet101v1');
    const manifest = JSON.parse(await (await testEnv.MODELS.get(manifestKey('resnet101v1')))!.text()) as Record<string, unknown>;
    await testEnv.MODELS.put(manifestKey('resnet101v1'), JSON.stringify({ ...manifest, session: { disablePrepacking: 'yes' } }));
    const res = await call('/predict/resnet101v1', { method: 'POST', body: await cat() });
    expect(res.status).toBe(503);
    expect(((await res.json()) as ErrorAnswer).message).toMatch(/session settings/);
  });
});

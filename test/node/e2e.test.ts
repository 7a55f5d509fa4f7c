/**
 * End to end: `wrangler dev` as a real server with the front Worker and both stage Workers (as
 * `npm start` runs them), local R2 seeded the way `npm start` seeds it, and real JPEGs posted
 * over HTTP in the seed page's curl form.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WranglerDev } from '../../bench/workerd';
import { uploadModel } from '../../models/src/upload';
import { ensureTestModel } from '../models';
import { ROOT } from '../../models/src/paths';

let server: WranglerDev | undefined;
let persistTo: string;
let base: string;

/** Uploads a split test model, and the same weights whole under another id. */
async function uploadSplitAndWhole(id: string, wholeId: string): Promise<void> {
  const { dir, manifest } = await ensureTestModel(id, 'int8');
  await uploadModel(dir, { target: 'local', persistTo });
  const whole = join(persistTo, '.staging', wholeId);
  await mkdir(whole, { recursive: true });
  await symlink(join(dir, 'model.onnx'), join(whole, 'model.onnx'));
  const { stages: _, ...rest } = manifest;
  await writeFile(join(whole, 'manifest.json'), JSON.stringify({ ...rest, id: wholeId }));
  await uploadModel(whole, { target: 'local', persistTo });
}

beforeAll(async () => {
  const model = await ensureTestModel('resnet18v1', 'int8');
  persistTo = await mkdtemp(join(tmpdir(), 'edge-resnet-e2e-'));
  await uploadModel(model.dir, { target: 'local', persistTo });
  await uploadSplitAndWhole('resnet101v1', 'resnet101v2');
  const configs = ['wrangler.toml', 'wrangler.stage-1.toml', 'wrangler.stage-2.toml'].map((c) => join(ROOT, c));
  server = await WranglerDev.start(configs, persistTo);
  base = server.base;
}, 300_000);

afterAll(async () => {
  await server?.stop();
  if (persistTo) await rm(persistTo, { recursive: true, force: true });
});

const photo = (name: string) => readFile(join(ROOT, 'test/fixtures/photos', name));

async function postForm(path: string, name: string): Promise<Response> {
  const form = new FormData();
  form.append('data', new Blob([await photo(name)], { type: 'image/jpeg' }), name);
  return fetch(`${base}${path}`, { method: 'POST', body: form });
}

describe('wrangler dev, end to end', () => {
  it('classifies a JPEG posted as the seed page does (curl -F "data=@kitten.jpg")', async () => {
    const res = await postForm('/resnet18v1/predict', 'chelsea.jpg');
    expect(res.status, server?.tail()).toBe(200);
    expect(res.headers.get('X-Model-Weights')).toBe('synthetic');
    const body = (await res.json()) as Array<{ class: string; probability: number }>;
    expect(body).toHaveLength(5);
    expect(body[0]!.class).toMatch(/^n\d{8} \S/);
    const probabilities = body.map((p) => p.probability);
    expect(probabilities).toEqual([...probabilities].sort((a, b) => b - a));
  });

  it('answers JSON errors over HTTP too', async () => {
    const res = await fetch(`${base}/predict`, { method: 'POST', body: 'not an image' });
    expect(res.status).toBe(415);
    expect(await res.json()).toMatchObject({ code: 415, type: 'unsupported_media_type' });
  });

  it('serves a split model across three Workers, answering as the whole model does', async () => {
    const whole = await postForm('/predict/resnet101v2?topk=10', 'coffee.jpg');
    expect(whole.status, server?.tail()).toBe(200);
    const staged = await postForm('/predict/resnet101v1?topk=10', 'coffee.jpg');
    expect(staged.status, server?.tail()).toBe(200);
    type Answer = { images: Array<{ predictions: Array<{ index: number; probability: number }> }> };
    const [a, b] = [((await staged.json()) as Answer).images[0]!.predictions, ((await whole.json()) as Answer).images[0]!.predictions];
    expect(a.map((p) => p.index)).toEqual(b.map((p) => p.index));
    a.forEach((p, i) => expect(p.probability).toBeCloseTo(b[i]!.probability, 6));

    // Each later stage ran in its own Worker, which reports its own onnxruntime heap.
    const info = (await (await fetch(`${base}/models/resnet101v1`)).json()) as {
      loaded: { isolates: Array<{ stage: number; isolate: string; wasmHeapBytes?: number }> };
    };
    expect(info.loaded.isolates.map((i) => i.isolate)).toEqual(['this', 'STAGE_1', 'STAGE_2']);
    for (const i of info.loaded.isolates) expect(i.wasmHeapBytes).toBeGreaterThan(1 << 20);
  });
});

import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import worker from '../../src/index';
import { manifestKey, modelKey, stageFile, stageKey, type ModelManifest } from '../../src/models/manifest';

interface TestEnv extends Env {
  /** Test-only service (vitest.config.ts) that reads fixtures from disk. */
  FIXTURES: Fetcher;
}
export const testEnv = env as unknown as TestEnv;

/** Bytes of a repo-relative fixture file. */
export async function fixture(path: string): Promise<Uint8Array> {
  const res = await testEnv.FIXTURES.fetch(`http://fixtures/${path}`);
  if (!res.ok) throw new Error(`fixture ${path}: ${res.status} ${await res.text()}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Test models built by the global setup (see test/models.ts). */
export const TEST_MODELS = 'models/out/test';
/** Test models served as int8 unless asked otherwise (the split ones are int8 only). */
const INT8_BY_DEFAULT = ['resnet18v1', 'resnet101v1', 'resnet50v2'];

/**
 * Puts a test model into local R2 under `id` (by default its own id). `source` is the test
 * model's id, with `/fp32` or `/int8` (the default when it has one is int8, as served).
 */
export async function seedModel(source: string, id = source.split('/')[0]!): Promise<void> {
  const path = source.includes('/') ? source : INT8_BY_DEFAULT.includes(source) ? `${source}/int8` : `${source}/fp32`;
  const [model, manifestText] = await Promise.all([
    fixture(`${TEST_MODELS}/${path}/model.onnx`),
    fixture(`${TEST_MODELS}/${path}/manifest.json`).then((b) => new TextDecoder().decode(b)),
  ]);
  const manifest = { ...JSON.parse(manifestText), id } as ModelManifest;
  await testEnv.MODELS.put(modelKey(id), model);
  for (const [k] of (manifest.stages ?? []).entries()) {
    await testEnv.MODELS.put(stageKey(id, k), await fixture(`${TEST_MODELS}/${path}/${stageFile(k)}`));
  }
  await testEnv.MODELS.put(manifestKey(id), JSON.stringify(manifest));
}

/** Sends a request through the Worker, optionally with vars overridden for this request. */
export async function call(path: string, init: RequestInit = {}, vars: Partial<Env> = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://edge.test${path}`, init), { ...testEnv, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** A multipart body with the given files, all in field `data` unless named. */
export function form(...files: Array<Uint8Array | { field: string; bytes: Uint8Array | string }>): FormData {
  const body = new FormData();
  files.forEach((f, i) => {
    if (f instanceof Uint8Array) body.append('data', new Blob([f]), `image${i}.jpg`);
    else if (typeof f.bytes === 'string') body.append(f.field, f.bytes);
    else body.append(f.field, new Blob([f.bytes]), `image${i}.jpg`);
  });
  return body;
}

export interface NativeAnswer {
  model: { id: string; precision: string; weights: string; source: string };
  notice?: string;
  images: Array<{
    width: number;
    height: number;
    predictions: Array<{ index: number; synset: string; label: string; probability: number }>;
  }>;
  timings: Record<'model' | 'decode' | 'preprocess' | 'inference' | 'total', number>;
}

export interface ErrorAnswer {
  code: number;
  type: string;
  message: string;
}

/**
 * A view of the test bucket that is a distinct binding object: the model registry is kept per
 * binding, so each one behaves as a fresh isolate's (its own sessions, its own warm state).
 */
export function isolatedBucket(): R2Bucket {
  const b = testEnv.MODELS;
  return {
    get: (key: string) => b.get(key),
    head: (key: string) => b.head(key),
    list: (options?: R2ListOptions) => b.list(options),
  } as unknown as R2Bucket;
}

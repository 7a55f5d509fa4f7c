/**
 * The typed client (client/) against the real Worker under `wrangler dev` (the three Workers
 * as `npm start` runs them, local R2 with the int8 test model, the local queue and its
 * consumer), with an API key set: bytes and Blobs, a batch, URL input, moderation with an
 * inline policy, errors as EdgeResnetError, the key, and a job through waitForJob. One wrangler
 * dev for the file. The test model's weights are synthetic: only the shape and consistency of
 * the answers are checked, never what they say about an image.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIGS, WranglerDev } from '../../bench/workerd';
import { createClient, EdgeResnetError, type EdgeResnetClient, type InlinePolicy } from '../../client/index.js';
import { ROOT } from '../../models/src/paths';
import { uploadModel } from '../../models/src/upload';
import { ensureTestModel } from '../models';
import { startUrlServer, type UrlServer } from '../url-server';

const API_KEY = 'client-e2e-key';
let server: WranglerDev | undefined;
let images: UrlServer | undefined;
let persistTo: string;
let api: EdgeResnetClient;

const photo = (name: string) => readFile(join(ROOT, 'test/fixtures/photos', name));
const ENTITY_BLOCK: InlinePolicy = { name: 'e2e', rules: [{ concept: 'entity', threshold: 0.5, action: 'block' }] };

beforeAll(async () => {
  images = await startUrlServer();
  const model = await ensureTestModel('resnet18v1', 'int8');
  persistTo = await mkdtemp(join(tmpdir(), 'edge-resnet-client-e2e-'));
  await uploadModel(model.dir, { target: 'local', persistTo });
  server = await WranglerDev.start(
    CONFIGS.map((c) => join(ROOT, c)),
    persistTo,
    180_000,
    // URL input and URL jobs from the local image server on 127.0.0.1.
    { vars: { API_KEY, URL_HOSTS: '127.0.0.1' } },
  );
  api = createClient({ baseUrl: server.base, apiKey: API_KEY, timeoutMs: 120_000 });
}, 300_000);

afterAll(async () => {
  await server?.stop();
  await images?.close();
  if (persistTo) await rm(persistTo, { recursive: true, force: true });
});

/** An error the call must throw, as the client's error type. */
const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(EdgeResnetError);
      return err as EdgeResnetError;
    },
  );

describe('the client against wrangler dev', () => {
  it('classify(bytes) and classify(Blob): the native answer, typed, with the synthetic notice', async () => {
    const bytes = await photo('chelsea.jpg');
    const a = await api.classify(bytes);
    expect(a.model).toMatchObject({ id: 'resnet18v1', weights: 'synthetic' });
    expect(a.notice).toMatch(/synthetic weights/);
    expect(a.cache).toBe('BYPASS');
    expect(a.images).toHaveLength(1);
    const [{ width, height, predictions }] = a.images as [(typeof a.images)[number]];
    expect([width, height]).toEqual([451, 300]);
    expect(predictions).toHaveLength(5);
    expect(predictions.map((p) => p.probability)).toEqual(predictions.map((p) => p.probability).sort((x, y) => y - x));

    const b = await api.classify(new File([bytes], 'chelsea.jpg', { type: 'image/jpeg' }), { model: 'resnet18v1', topk: 3, concepts: ['cat'] });
    expect(b.images[0]!.predictions).toEqual(predictions.slice(0, 3));
    expect(b.images[0]!.concepts).toEqual([expect.objectContaining({ id: 'n02121620', name: 'cat, true cat', classes: 7 })]);
  });

  it('a batch of two, a stream, and { url }: each image answered as when sent alone', async () => {
    const [chelsea, coffee] = await Promise.all([photo('chelsea.jpg'), photo('coffee.jpg')]);
    const alone = await Promise.all([api.classify(chelsea), api.classify(coffee)]);
    const batch = await api.classify([new Blob([chelsea]), coffee.buffer.slice(coffee.byteOffset, coffee.byteOffset + coffee.byteLength)]);
    expect(batch.images.map((i) => i.predictions.map((p) => p.index))).toEqual(alone.map((a) => a.images[0]!.predictions.map((p) => p.index)));
    batch.images.forEach((image, k) =>
      image.predictions.forEach((p, i) => expect(p.probability).toBeCloseTo(alone[k]!.images[0]!.predictions[i]!.probability, 5)),
    );

    const streamed = await api.classify(new Blob([coffee]).stream());
    expect(streamed.images[0]!.predictions).toEqual(alone[1]!.images[0]!.predictions);
    const fetched = await api.classify({ url: `${images!.base}/image/chelsea.jpg` });
    expect(fetched.images[0]!.predictions).toEqual(alone[0]!.images[0]!.predictions);
  });

  it('moderate with an inline policy, as multipart and beside a URL', async () => {
    const bytes = await photo('chelsea.jpg');
    const m = await api.moderate(bytes, { policy: ENTITY_BLOCK });
    expect(m.policy.name).toBe('e2e');
    expect(m.policy.sha256).toMatch(/^[0-9a-f]{64}$/);
    // Every class is under `entity`: the rule fires whatever the (synthetic) weights say.
    expect(m.images[0]).toMatchObject({ decision: 'block', triggered: [{ concept: 'n00001740', action: 'block', threshold: 0.5 }] });
    expect(m.notice).toMatch(/synthetic weights/);
    const byUrl = await api.moderate({ url: `${images!.base}/image/chelsea.jpg` }, { policy: ENTITY_BLOCK });
    expect(byUrl.policy.sha256).toBe(m.policy.sha256);
    expect(byUrl.images[0]!.decision).toBe('block');
  });

  it('errors come as EdgeResnetError with the API status and type', async () => {
    const notImage = await failure(api.classify(new TextEncoder().encode('not an image')));
    expect(notImage).toMatchObject({ status: 415, type: 'unsupported_media_type' });
    expect(await failure(api.classify(await photo('chelsea.jpg'), { model: 'resnet999v9' }))).toMatchObject({ status: 404, type: 'not_found' });
    expect(await failure(api.moderate(await photo('chelsea.jpg')))).toMatchObject({ status: 400, type: 'bad_request', message: expect.stringMatching(/no policy/) });
    expect(await failure(api.moderate(await photo('chelsea.jpg'), { policy: 'no-such-policy' }))).toMatchObject({ status: 404, type: 'not_found' });
    const badPolicy = { name: 'x', rules: [{ concept: 'dog', threshold: 2, action: 'block' }] } as InlinePolicy;
    expect(await failure(api.moderate(await photo('chelsea.jpg'), { policy: badPolicy }))).toMatchObject({ status: 400, message: expect.stringMatching(/threshold/) });
  });

  it('the API key: sent as a Bearer token; without it or wrong, 401 unauthorized', async () => {
    const anonymous = createClient({ baseUrl: server!.base });
    expect(await failure(anonymous.models())).toMatchObject({ status: 401, type: 'unauthorized' });
    const wrong = createClient({ baseUrl: server!.base, apiKey: 'wrong' });
    expect(await failure(wrong.concept('cat'))).toMatchObject({ status: 401, type: 'unauthorized' });
    const models = await api.models();
    expect(models.default).toBe('resnet18v1');
    expect(models.models).toContainEqual(expect.objectContaining({ id: 'resnet18v1', available: true, weights: 'synthetic' }));
  });

  it('the GET routes: concept, policies', async () => {
    expect(await api.concept('cat')).toMatchObject({ id: 'n02121620', name: 'cat, true cat', classes: 7 });
    expect(await api.policies()).toEqual([]);
    expect(await failure(api.policy('weapons'))).toMatchObject({ status: 404, type: 'not_found' });
    expect(await failure(api.concept('nudity'))).toMatchObject({ status: 404 });
  });

  it('a job: createJob { url } with an inline policy, then waitForJob until the queue consumer is done', async () => {
    const created = await api.createJob({ url: `${images!.base}/image/chelsea.jpg`, policy: ENTITY_BLOCK, metadata: { from: 'client-e2e' } });
    expect(created).toMatchObject({ status: 'queued', id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const job = await api.waitForJob(created.id, { intervalMs: 250, timeoutMs: 120_000 });
    expect(job).toMatchObject({ id: created.id, status: 'done', metadata: { from: 'client-e2e' }, delivery: { status: 'none' } });
    expect(job.result?.images[0]?.decision).toBe('block');
    expect(job.result?.policy.name).toBe('e2e');
    expect(await failure(api.getJob('00000000-0000-4000-8000-000000000000'))).toMatchObject({ status: 404, type: 'not_found' });
  }, 180_000);
});

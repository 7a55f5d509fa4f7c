/** Every route and every error status, through the Worker's fetch handler in workerd with local R2. */
import { zlibSync } from 'fflate';
import { pngFile } from '../../models/src/png';
import { beforeAll, describe, expect, it } from 'vitest';
import { call, fixture, form, seedModel, type ErrorAnswer, type NativeAnswer } from './helpers';

let cat: Uint8Array;
let coffee: Uint8Array;
let rocket: Uint8Array;
let catPng: Uint8Array;

beforeAll(async () => {
  await seedModel('resnet18v1');
  const photo = (name: string) => fixture(`test/fixtures/photos/${name}`);
  [cat, coffee, rocket, catPng] = await Promise.all([photo('chelsea.jpg'), photo('coffee.jpg'), photo('rocket.jpg'), photo('chelsea.png')]);
});

async function expectError(res: Response, code: number, type: string, message?: RegExp): Promise<ErrorAnswer> {
  expect(res.status).toBe(code);
  expect(res.headers.get('Content-Type')).toMatch(/^application\/json/);
  const body = (await res.json()) as ErrorAnswer;
  expect(body).toMatchObject({ code, type });
  if (message) expect(body.message).toMatch(message);
  return body;
}

describe('POST /predict (native shape)', () => {
  it('classifies the multipart field "data" with the default model', async () => {
    const res = await call('/predict', { method: 'POST', body: form(cat) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as NativeAnswer;
    expect(body.model).toMatchObject({ id: 'resnet18v1', precision: 'int8-qoperator', weights: 'synthetic' });
    expect(body.notice).toMatch(/synthetic weights/);
    expect(body.images).toHaveLength(1);
    const [image] = body.images;
    expect(image).toMatchObject({ width: 451, height: 300 });
    expect(image!.predictions).toHaveLength(5);
    for (const p of image!.predictions) {
      expect(p.synset).toMatch(/^n\d{8}$/);
      expect(p.label.length).toBeGreaterThan(0);
      expect(p.index).toBeGreaterThanOrEqual(0);
      expect(p.index).toBeLessThan(1000);
    }
    const probabilities = image!.predictions.map((p) => p.probability);
    expect(probabilities).toEqual([...probabilities].sort((a, b) => b - a));
    expect(probabilities.reduce((a, b) => a + b)).toBeLessThanOrEqual(1 + 1e-6);
    for (const stage of ['model', 'decode', 'preprocess', 'inference', 'total'] as const) {
      expect(body.timings[stage]).toBeGreaterThanOrEqual(0);
    }
    expect(body.timings.inference).toBeGreaterThan(0);
    const serverTiming = res.headers.get('Server-Timing') ?? '';
    for (const stage of ['decode', 'preprocess', 'inference', 'total']) expect(serverTiming).toMatch(new RegExp(`${stage};dur=[\\d.]+`));
    expect(res.headers.get('X-Model-Weights')).toBe('synthetic');
  });

  it('takes the raw body, and /predict/:model picks the model', async () => {
    const res = await call('/predict/resnet18v1', { method: 'POST', body: cat, headers: { 'Content-Type': 'image/jpeg' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as NativeAnswer).model.id).toBe('resnet18v1');
  });

  it('gives the same answer for the same image in any form', async () => {
    const [a, b] = await Promise.all([
      call('/predict?topk=10', { method: 'POST', body: form(cat) }).then((r) => r.json() as Promise<NativeAnswer>),
      call('/predict?topk=10', { method: 'POST', body: cat }).then((r) => r.json() as Promise<NativeAnswer>),
    ]);
    expect(a.images).toEqual(b.images);
  });

  it('accepts any single file field when there is no "data"', async () => {
    const res = await call('/predict', { method: 'POST', body: form({ field: 'image', bytes: cat }) });
    expect(res.status).toBe(200);
  });

  it('classifies PNG uploads', async () => {
    const res = await call('/predict', { method: 'POST', body: form(catPng) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as NativeAnswer;
    expect(body.images[0]).toMatchObject({ width: 451, height: 300 });
  });

  it('classifies WebP (lossy; lossless with EXIF orientation 8) and GIF uploads, libwebp loaded in workerd', async () => {
    const files = ['test/fixtures/webp/chelsea-lossy-q80.webp', 'test/fixtures/webp/chelsea-lossless-exif8.webp', 'test/fixtures/gif/interlaced-13x11.gif'];
    const res = await call('/predict', { method: 'POST', body: form(...(await Promise.all(files.map((f) => fixture(f))))) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as NativeAnswer;
    // Stored 150x100 with orientation 8: upright 100x150.
    expect(body.images.map((i) => [i.width, i.height])).toEqual([[150, 100], [100, 150], [13, 11]]);
  });

  it('classifies a 12 MP lossy WebP (libwebp decodes it at reduced scale, streamed)', async () => {
    const res = await call('/predict', { method: 'POST', body: await fixture('test/fixtures/webp/big-4032x3024-lossy.webp') });
    expect(res.status).toBe(200);
    const body = (await res.json()) as NativeAnswer;
    expect(body.images[0]).toMatchObject({ width: 4032, height: 3024 });
  });
});

describe('image variants through the Worker', () => {
  const predict = async (path: string) => {
    const res = await call('/predict?topk=5', { method: 'POST', body: form(await fixture(path)) });
    expect(res.status).toBe(200);
    return ((await res.json()) as NativeAnswer).images[0]!;
  };

  it('applies EXIF orientation: a photo stored rotated with Orientation 6 is classified upright', async () => {
    const all = async (path: string) => {
      const res = await call('/predict?topk=1000', { method: 'POST', body: form(await fixture(path)) });
      const image = ((await res.json()) as NativeAnswer).images[0]!;
      const probabilities = new Float64Array(1000);
      for (const p of image.predictions) probabilities[p.index] = p.probability;
      return { ...image, probabilities };
    };
    const [upright, rotated, control] = await Promise.all([
      all('test/fixtures/photos/chelsea-upright.jpg'),
      all('test/fixtures/photos/chelsea-exif6.jpg'),
      all('test/fixtures/photos/chelsea-noexif6.jpg'),
    ]);
    expect([rotated.width, rotated.height]).toEqual([451, 300]);
    expect([control.width, control.height]).toEqual([300, 451]);
    // Turned upright, the stored-rotated photo is the same picture up to JPEG re-encoding; left
    // sideways (no tag) it is a different picture. Compare whole distributions: the synthetic
    // model's top classes are too close for a top-1 comparison to be stable.
    const distance = (a: Float64Array, b: Float64Array) => a.reduce((sum, x, i) => sum + Math.abs(x - b[i]!), 0);
    const same = distance(rotated.probabilities, upright.probabilities);
    const sideways = distance(control.probabilities, upright.probabilities);
    expect(same).toBeLessThan(sideways / 3);
  });

  it('reports the upload\'s own size when a large JPEG is decoded at reduced scale', async () => {
    const image = await predict('test/fixtures/photos/astronaut.jpg'); // 512x512: decoded at 1/2
    expect([image.width, image.height]).toEqual([512, 512]);
    const rotated = await predict('test/fixtures/photos/chelsea-exif6.jpg');
    expect([rotated.width, rotated.height]).toEqual([451, 300]);
  });

  it('classifies grayscale and CMYK JPEGs and grayscale PNGs', async () => {
    for (const path of ['test/fixtures/images/jpeg-gray.jpg', 'test/fixtures/images/jpeg-cmyk.jpg', 'test/fixtures/photos/camera.png']) {
      const image = await predict(path);
      expect(image.predictions).toHaveLength(5);
    }
  });
});

describe('batches', () => {
  it('classifies several "data" files in one run, each as it would be alone', async () => {
    const res = await call('/predict?topk=3', { method: 'POST', body: form(cat, coffee, rocket) });
    expect(res.status).toBe(200);
    const batch = (await res.json()) as NativeAnswer;
    expect(batch.images.map((i) => [i.width, i.height])).toEqual([
      [451, 300],
      [600, 400],
      [640, 427],
    ]);
    const singles = await Promise.all(
      [cat, coffee, rocket].map((img) =>
        call('/predict?topk=3', { method: 'POST', body: form(img) }).then((r) => r.json() as Promise<NativeAnswer>),
      ),
    );
    batch.images.forEach((image, i) => {
      const alone = singles[i]!.images[0]!.predictions;
      expect(image.predictions.map((p) => p.index)).toEqual(alone.map((p) => p.index));
      image.predictions.forEach((p, j) => expect(p.probability).toBeCloseTo(alone[j]!.probability, 5));
    });
    // Different photos must not collapse to one answer (a constant model would pass the rest).
    expect(new Set(batch.images.map((i) => JSON.stringify(i.predictions.map((p) => p.index)))).size).toBeGreaterThan(1);
  });

  it('refuses more images than MAX_IMAGES with 413', async () => {
    const res = await call('/predict', { method: 'POST', body: form(cat, cat, cat) }, { MAX_IMAGES: '2' });
    await expectError(res, 413, 'payload_too_large', /too many images: 3/);
  });

  it('names the bad image of a batch', async () => {
    const res = await call('/predict', { method: 'POST', body: form(cat, new TextEncoder().encode('BM not a supported bitmap')) });
    await expectError(res, 415, 'unsupported_media_type', /^data\[1\]: /);
  });
});

describe('topk', () => {
  it('returns K classes; all 1000 sum to one', async () => {
    const one = (await (await call('/predict?topk=1', { method: 'POST', body: cat })).json()) as NativeAnswer;
    expect(one.images[0]!.predictions).toHaveLength(1);
    const all = (await (await call('/predict?topk=1000', { method: 'POST', body: cat })).json()) as NativeAnswer;
    const predictions = all.images[0]!.predictions;
    expect(predictions).toHaveLength(1000);
    expect(new Set(predictions.map((p) => p.index)).size).toBe(1000);
    expect(predictions.reduce((s, p) => s + p.probability, 0)).toBeCloseTo(1, 5);
    expect(predictions[0]).toEqual(one.images[0]!.predictions[0]);
  });

  it.each(['0', '1001', 'abc', '2.5', '-1', ''])('rejects topk=%s with 400', async (k) => {
    await expectError(await call(`/predict?topk=${k}`, { method: 'POST', body: cat }), 400, 'bad_request', /topk/);
  });
});

describe('compatibility shapes', () => {
  it('POST /:model/predict answers as the model server: [{ class, probability }]', async () => {
    const res = await call('/resnet18v1/predict', { method: 'POST', body: form(cat) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Array<{ class: string; probability: number }>;
    expect(body).toHaveLength(5);
    for (const p of body) {
      expect(Object.keys(p).sort()).toEqual(['class', 'probability']);
      expect(p.class).toMatch(/^n\d{8} \S/);
    }
    expect(res.headers.get('X-Model-Weights')).toBe('synthetic');
    expect(res.headers.get('Warning')).toMatch(/synthetic weights/);
  });

  it('POST /predictions/:model answers as TorchServe: { label: probability }', async () => {
    const res = await call('/predictions/resnet18v1?topk=3', { method: 'POST', body: cat });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, number>;
    expect(Object.keys(body)).toHaveLength(3);
    for (const [label, probability] of Object.entries(body)) {
      expect(label).not.toMatch(/^n\d{8}/);
      expect(probability).toBeGreaterThan(0);
    }
  });

  it('answers a batch with one result per image', async () => {
    const res = await call('/resnet18v1/predict', { method: 'POST', body: form(cat, coffee) });
    const body = (await res.json()) as unknown[][];
    expect(body).toHaveLength(2);
    expect(body[0]).toHaveLength(5);
  });
});

describe('bad requests', () => {
  it('400 without an image', async () => {
    await expectError(await call('/predict', { method: 'POST' }), 400, 'bad_request', /no image/);
    await expectError(await call('/predict', { method: 'POST', body: form({ field: 'note', bytes: 'hello' }) }), 400, 'bad_request', /no image/);
  });

  it('400 when "data" is not a file', async () => {
    await expectError(await call('/predict', { method: 'POST', body: form({ field: 'data', bytes: 'abc' }) }), 400, 'bad_request', /"data" must be a file/);
  });

  it('400 for several file fields none of which is "data"', async () => {
    const body = form({ field: 'a', bytes: cat }, { field: 'b', bytes: cat });
    await expectError(await call('/predict', { method: 'POST', body }), 400, 'bad_request', /several file fields/);
  });

  it('400 for a malformed multipart body', async () => {
    const res = await call('/predict', {
      method: 'POST',
      body: '--xyz\r\nContent-Disposition: form-data; name="data"\r\n\r\nunterminated',
      headers: { 'Content-Type': 'multipart/form-data; boundary=xyz' },
    });
    await expectError(res, 400, 'bad_request', /malformed multipart/);
  });

  it('404 for an unknown model, 404 for an unknown route', async () => {
    await expectError(await call('/predict/resnet9000', { method: 'POST', body: cat }), 404, 'not_found', /resnet9000/);
    await expectError(await call('/nowhere'), 404, 'not_found');
  });

  it('405 with Allow for the wrong method', async () => {
    const res = await call('/predict');
    await expectError(res, 405, 'method_not_allowed');
    expect(res.headers.get('Allow')).toBe('POST');
    const ping = await call('/ping', { method: 'POST' });
    expect(ping.status).toBe(405);
    expect(ping.headers.get('Allow')).toBe('GET');
  });

  it('413 for a body over MAX_BODY_BYTES', async () => {
    const res = await call('/predict', { method: 'POST', body: cat }, { MAX_BODY_BYTES: '1000' });
    await expectError(res, 413, 'payload_too_large', /over 1000 bytes/);
  });

  it('413 for an image over MAX_PIXELS, from its header', async () => {
    const res = await call('/predict', { method: 'POST', body: cat }, { MAX_PIXELS: '100000' });
    await expectError(res, 413, 'payload_too_large', /451.300/);
  });

  it('413 when decoding would need more than MAX_DECODE_MB', async () => {
    // Streamed decodes need far less than 1 MB; an interlaced PNG must be held whole.
    const res = await call('/predict', { method: 'POST', body: interlacedPng(800, 600) }, { MAX_DECODE_MB: '1' });
    await expectError(res, 413, 'payload_too_large', /800x600 needs [\d.]+ MB to decode \(an interlaced PNG must be held whole\), over the limit of 1 MB/);
    // The same photo as ever decodes in a few hundred kB, streamed.
    expect((await call('/predict', { method: 'POST', body: rocket }, { MAX_DECODE_MB: '1' })).status).toBe(200);
  });

  it('415 for a format we do not read, whatever the Content-Type says, naming what we do read', async () => {
    const avif = new Uint8Array([0, 0, 0, 0x1c, 0x66, 0x74, 0x79, 0x70, 0x61, 0x76, 0x69, 0x66, 0, 0, 0, 0]);
    const res = await call('/predict', { method: 'POST', body: avif, headers: { 'Content-Type': 'image/jpeg' } });
    await expectError(res, 415, 'unsupported_media_type', /AVIF is not supported; send JPEG, PNG, WebP or GIF/);
  });

  it('422 for a truncated JPEG', async () => {
    const res = await call('/predict', { method: 'POST', body: cat.slice(0, Math.floor(cat.length / 2)) });
    await expectError(res, 422, 'unprocessable_image');
  });

  it('500 without internals when something unexpected breaks', async () => {
    // A listing of the wrong shape breaks our code past R2: a bug, so an opaque 500.
    const broken = { list: () => Promise.resolve({ secret: 'detail at /internal/path' }) } as unknown as R2Bucket;
    const res = await call('/models', {}, { MODELS: broken });
    const body = await expectError(res, 500, 'internal', /^internal error$/);
    expect(JSON.stringify(body)).not.toMatch(/secret|internal\/path|iterable/);
  });

  it('503 without R2\'s own words when R2 fails', async () => {
    const broken = { list: () => Promise.reject(new Error('secret detail at /internal/path')) } as unknown as R2Bucket;
    const res = await call('/models', {}, { MODELS: broken });
    const body = await expectError(res, 503, 'model_unavailable', /the model list: reading from R2 failed; retry shortly/);
    expect(JSON.stringify(body)).not.toMatch(/secret|internal\/path/);
  });
});

describe('GET /models and /ping', () => {
  it('lists what is in R2 and what this isolate has loaded', async () => {
    await call('/predict', { method: 'POST', body: cat });
    const res = await call('/models');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { default: string; models: Array<Record<string, unknown>> };
    expect(body.default).toBe('resnet18v1');
    const model = body.models.find((m) => m.id === 'resnet18v1');
    expect(model).toMatchObject({ available: true, precision: 'int8-qoperator', weights: 'synthetic', depth: 18, version: 'v1' });
    expect(model!.input).toMatchObject({ shape: ['N', 3, 224, 224] });
    expect(model!.loaded).toMatchObject({ loadMs: expect.any(Number) });
  });

  it('describes one model, and 404s an unknown one', async () => {
    const res = await call('/models/resnet18v1');
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ id: 'resnet18v1', default: true, weights: 'synthetic' });
    expect(body.manifest).toMatchObject({ preprocess: { resizeShorter: 256, cropHeight: 224 } });
    await expectError(await call('/models/nope'), 404, 'not_found');
  });

  it('pings healthy when the default model is in R2, 503 with a reason when not', async () => {
    expect(await (await call('/ping')).json()).toEqual({ status: 'Healthy' });
    const res = await call('/ping', {}, { DEFAULT_MODEL: 'resnet152v2' });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'Unhealthy', reason: expect.stringMatching(/resnet152v2/) });
  });
});

describe('API key and CORS', () => {
  const vars = { API_KEY: 'sesame-0123456789' };

  it('requires the key when one is set', async () => {
    await expectError(await call('/predict', { method: 'POST', body: cat }, vars), 401, 'unauthorized');
    await expectError(
      await call('/predict', { method: 'POST', body: cat, headers: { Authorization: 'Bearer sesame-0123456788' } }, vars),
      401,
      'unauthorized',
    );
    const bearer = await call('/predict', { method: 'POST', body: cat, headers: { Authorization: `Bearer ${vars.API_KEY}` } }, vars);
    expect(bearer.status).toBe(200);
    const header = await call('/models', { headers: { 'X-API-Key': vars.API_KEY } }, vars);
    expect(header.status).toBe(200);
  });

  it('leaves /ping open and needs no key when none is set', async () => {
    expect((await call('/ping', {}, vars)).status).toBe(200);
    expect((await call('/models')).status).toBe(200);
  });

  it('answers CORS only for listed origins', async () => {
    const cors = { CORS_ORIGINS: 'https://app.example, https://admin.example' };
    const preflight = await call(
      '/predict',
      { method: 'OPTIONS', headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' } },
      cors,
    );
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example');
    const other = await call('/models', { headers: { Origin: 'https://evil.example' } }, cors);
    expect(other.headers.get('Access-Control-Allow-Origin')).toBeNull();
    const off = await call('/models', { headers: { Origin: 'https://app.example' } });
    expect(off.headers.get('Access-Control-Allow-Origin')).toBeNull();
  });
});

/** A black Adam7-interlaced 8-bit RGB PNG (every pass's rows: filter 0, zero samples). */
function interlacedPng(width: number, height: number): Uint8Array {
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  let raw = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const w = Math.ceil((width - x0!) / dx!);
    const h = Math.ceil((height - y0!) / dy!);
    if (w > 0 && h > 0) raw += h * (1 + w * 3);
  }
  return pngFile(width, height, zlibSync(new Uint8Array(raw)), { interlaced: true });
}

/**
 * The Open Inference Protocol (KServe v2) routes through the Worker in workerd with local R2:
 * metadata and health, inference from encoded images (binary and base64 BYTES) and from
 * preprocessed FP32 tensors (JSON and binary), the binary and classification extensions, and
 * the protocol's `{ error }` answers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { IMAGENET_PREPROCESS } from '../../src/models/manifest';
import { planFor, prepareInput } from '../../src/pipeline/prepare';
import { getKernel } from '../../src/preprocess';
import { call, fixture, form, seedModel, type NativeAnswer } from './helpers';

const MODEL = 'resnet18v1';
const INFER = `/v2/models/${MODEL}/infer`;
const OUTPUT = 'resnetv10_dense0_fwd';
const SIZE = 3 * 224 * 224;

let cat: Uint8Array;
let coffee: Uint8Array;

beforeAll(async () => {
  await seedModel(MODEL);
  const photo = (name: string) => fixture(`test/fixtures/photos/${name}`);
  [cat, coffee] = await Promise.all([photo('chelsea.jpg'), photo('coffee.jpg')]);
});

interface V2Output {
  name: string;
  datatype: string;
  shape: number[];
  data?: Array<number | string>;
  parameters?: { binary_data_size?: number };
}
interface V2Answer {
  model_name: string;
  model_version: string;
  id?: string;
  parameters: { weights: string; notice?: string };
  outputs: V2Output[];
}

/** A request with binary tensor data: the JSON part, then each binary input's bytes. */
function binaryRequest(json: unknown, ...parts: Uint8Array[]): RequestInit {
  const head = new TextEncoder().encode(JSON.stringify(json));
  const body = new Uint8Array(head.length + parts.reduce((a, p) => a + p.length, 0));
  body.set(head);
  parts.reduce((at, p) => (body.set(p, at), at + p.length), head.length);
  return { method: 'POST', body, headers: { 'Inference-Header-Content-Length': String(head.length), 'Content-Type': 'application/octet-stream' } };
}

const jsonRequest = (json: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(json), headers: { 'Content-Type': 'application/json' } });

/** BYTES elements in the extension's binary layout, written here independently of the Worker's code. */
function bytesBinary(...elements: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(elements.reduce((a, e) => a + 4 + e.length, 0));
  let at = 0;
  for (const e of elements) {
    out[at] = e.length & 0xff;
    out[at + 1] = (e.length >>> 8) & 0xff;
    out[at + 2] = (e.length >>> 16) & 0xff;
    out[at + 3] = (e.length >>> 24) & 0xff;
    out.set(e, at + 4);
    at += 4 + e.length;
  }
  return out;
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** A binary answer split into its JSON part and each binary output's bytes, in order. */
async function readBinary(res: Response): Promise<{ json: V2Answer; parts: Uint8Array[] }> {
  const length = Number(res.headers.get('Inference-Header-Content-Length'));
  expect(length).toBeGreaterThan(0);
  const body = new Uint8Array(await res.arrayBuffer());
  const json = JSON.parse(new TextDecoder().decode(body.subarray(0, length))) as V2Answer;
  let at = length;
  const parts = json.outputs.map((o) => {
    const size = o.parameters?.binary_data_size;
    expect(size).toBeTypeOf('number');
    expect(o.data).toBeUndefined();
    const part = body.subarray(at, at + size!);
    at += size!;
    return part;
  });
  expect(at).toBe(body.length);
  return { json, parts };
}

const floats = (bytes: Uint8Array) => Array.from(new Float32Array(bytes.slice().buffer));

function readBytesTensor(bytes: Uint8Array): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = view.getUint32(at, true);
    out.push(new TextDecoder().decode(bytes.subarray(at + 4, at + 4 + n)));
    at += 4 + n;
  }
  return out;
}

const argmax = (xs: ArrayLike<number>) => Array.from(xs).reduce((best, x, i, all) => (x > all[best]! ? i : best), 0);

async function ok(res: Response): Promise<V2Answer> {
  if (res.status !== 200) throw new Error(`${res.status}: ${await res.text()}`);
  return (await res.json()) as V2Answer;
}

/** The protocol's error: `{ error }` and nothing else, with the status given. */
async function expectError(res: Response, status: number, message?: RegExp): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get('Content-Type')).toMatch(/^application\/json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error).toBeTypeOf('string');
  if (message) expect(body.error).toMatch(message);
  return body.error as string;
}

/** The model input for `bytes` as the pipeline makes it (decode, resize, crop, normalize). */
async function preprocessed(...images: Uint8Array[]): Promise<Float32Array> {
  const limits = { maxPixels: 16_000_000, maxMemoryMB: 32 };
  const out = new Float32Array(images.length * SIZE);
  for (const [i, bytes] of images.entries()) {
    await prepareInput(bytes, planFor(bytes, IMAGENET_PREPROCESS, limits), IMAGENET_PREPROCESS, limits, getKernel(), out, i * SIZE);
  }
  return out;
}

async function predictTop(...images: Uint8Array[]): Promise<NativeAnswer['images']> {
  const res = await call('/predict?topk=3', { method: 'POST', body: form(...images) });
  expect(res.status).toBe(200);
  return ((await res.json()) as NativeAnswer).images;
}

describe('server and model metadata, health', () => {
  it('GET /v2 names the server and its extensions', async () => {
    const res = await call('/v2');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { name: string; version: string; extensions: string[] };
    expect(body.name).toBe('edge-resnet');
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.extensions).toEqual(expect.arrayContaining(['binary_tensor_data', 'classification']));
  });

  it('live always; ready when the default model is in R2', async () => {
    expect(await (await call('/v2/health/live')).json()).toEqual({ live: true });
    const ready = await call('/v2/health/ready');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
    const missing = await call('/v2/health/ready', {}, { DEFAULT_MODEL: 'resnet152v2' });
    expect(missing.status).toBe(503);
    expect(await missing.json()).toMatchObject({ ready: false, reason: expect.stringMatching(/resnet152v2/) });
  });

  it('model metadata lists both inputs and the output, with a version usable in paths', async () => {
    const res = await call(`/v2/models/${MODEL}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('X-Model-Weights')).toBe('synthetic');
    expect(res.headers.get('Warning')).toMatch(/synthetic weights/);
    const body = (await res.json()) as { name: string; versions: string[]; platform: string; inputs: unknown[]; outputs: unknown[] };
    expect(body).toMatchObject({ name: MODEL, platform: 'onnx' });
    expect(body.inputs).toEqual([
      { name: 'image', datatype: 'BYTES', shape: [-1] },
      { name: 'data', datatype: 'FP32', shape: [-1, 3, 224, 224] },
    ]);
    expect(body.outputs).toEqual([{ name: OUTPUT, datatype: 'FP32', shape: [-1, 1000] }]);
    expect(body.versions).toHaveLength(1);
    const version = body.versions[0]!;
    expect((await call(`/v2/models/${MODEL}/versions/${version}`)).status).toBe(200);
    expect(await (await call(`/v2/models/${MODEL}/versions/${version}/ready`)).json()).toEqual({ name: MODEL, ready: true });
    await expectError(await call(`/v2/models/${MODEL}/versions/nope`), 404, /no version "nope"/);
    await expectError(await call(`/v2/models/${MODEL}/versions/nope/infer`, jsonRequest({ inputs: [] })), 404, /no version/);
  });

  it('model ready; unknown models are 404s', async () => {
    const res = await call(`/v2/models/${MODEL}/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: MODEL, ready: true });
    await expectError(await call('/v2/models/nosuchmodel/ready'), 404, /unknown model "nosuchmodel"/);
    await expectError(await call('/v2/models/nosuchmodel'), 404, /unknown model/);
    await expectError(await call('/v2/models/nosuchmodel/infer', jsonRequest({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [base64(cat)] }] })), 404, /unknown model/);
  });
});

describe('POST /v2/models/{model}/infer with encoded images (BYTES)', () => {
  it('binary BYTES: the same probabilities and top class as /predict', async () => {
    const [expected] = await predictTop(cat);
    const res = await call(INFER, binaryRequest({ id: 'req-1', inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: cat.length + 4 } }] }, bytesBinary(cat)));
    expect(res.headers.get('X-Model-Weights')).toBe('synthetic');
    expect(res.headers.get('Warning')).toMatch(/synthetic weights/);
    expect(res.headers.get('Server-Timing')).toMatch(/inference;dur=/);
    const body = await ok(res);
    expect(body).toMatchObject({ model_name: MODEL, id: 'req-1', parameters: { weights: 'synthetic', notice: expect.stringMatching(/synthetic weights/) } });
    expect(body.model_version).toMatch(/^[0-9a-f]{12}$/);
    const [output] = body.outputs;
    expect(output).toMatchObject({ name: OUTPUT, datatype: 'FP32', shape: [1, 1000] });
    const probabilities = output!.data as number[];
    expect(probabilities).toHaveLength(1000);
    expect(probabilities.reduce((a, b) => a + b)).toBeCloseTo(1, 4);
    const top = argmax(probabilities);
    expect(top).toBe(expected!.predictions[0]!.index);
    for (const p of expected!.predictions) expect(probabilities[p.index]).toBe(Math.fround(p.probability));
  });

  it('base64 BYTES in plain JSON, a batch of two, equal to binary and to /predict', async () => {
    const expected = await predictTop(cat, coffee);
    const json = await ok(await call(INFER, jsonRequest({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [2, 1], data: [base64(cat), base64(coffee)] }] })));
    const binary = await ok(await call(INFER, binaryRequest({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: cat.length + coffee.length + 8 } }] }, bytesBinary(cat, coffee))));
    expect(json.outputs[0]!.shape).toEqual([2, 1000]);
    expect(json.outputs).toEqual(binary.outputs);
    const data = json.outputs[0]!.data as number[];
    expect(argmax(data.slice(0, 1000))).toBe(expected[0]!.predictions[0]!.index);
    expect(argmax(data.slice(1000))).toBe(expected[1]!.predictions[0]!.index);
    expect(expected[0]!.predictions[0]!.index).not.toBe(expected[1]!.predictions[0]!.index);
  });

  it('shares the result cache with /predict: an image /predict classified is a HIT, with the same probabilities', async () => {
    const vars = { CACHE_TTL_SECONDS: '3600' } as Partial<Env>;
    // Bytes no other test sends: a PNG of the cat, so the entry is this test's own.
    const png = await fixture('test/fixtures/photos/chelsea.png');
    const predict = await call('/predict?topk=1', { method: 'POST', body: png }, vars);
    expect(predict.headers.get('X-Cache')).toBe('MISS');
    const expected = ((await predict.json()) as NativeAnswer).images[0]!.predictions[0]!;
    const res = await call(INFER, jsonRequest({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [base64(png)] }] }), vars);
    expect(res.headers.get('X-Cache')).toBe('HIT');
    const data = (await ok(res)).outputs[0]!.data as number[];
    expect(argmax(data)).toBe(expected.index);
    expect(data[expected.index]).toBe(Math.fround(expected.probability));
    // Without the cache (the pool's default), BYPASS.
    const off = await call(INFER, jsonRequest({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [base64(png)] }] }));
    expect(off.headers.get('X-Cache')).toBe('BYPASS');
  });

  it('binary_data_output answers the probabilities as raw float32 after the JSON', async () => {
    const json = await ok(await call(INFER, jsonRequest({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [base64(cat)] }] })));
    const res = await call(INFER, jsonRequest({ parameters: { binary_data_output: true }, inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [base64(cat)] }] }));
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toBe('application/octet-stream');
    const { json: head, parts } = await readBinary(res);
    expect(head.outputs[0]).toMatchObject({ name: OUTPUT, datatype: 'FP32', shape: [1, 1000], parameters: { binary_data_size: 4000 } });
    expect(floats(parts[0]!)).toEqual(json.outputs[0]!.data);
    // An output's own binary_data overrides the request's default.
    const mixed = await ok(await call(INFER, jsonRequest({ parameters: { binary_data_output: true }, inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [base64(cat)] }], outputs: [{ name: OUTPUT, parameters: { binary_data: false } }] })));
    expect(mixed.outputs[0]!.data).toEqual(json.outputs[0]!.data);
  });

  it('the classification extension answers "<value>:<index>:<label>", in JSON and binary', async () => {
    const expected = await predictTop(cat, coffee);
    const input = { name: 'image', datatype: 'BYTES', shape: [2], data: [base64(cat), base64(coffee)] };
    const body = await ok(await call(INFER, jsonRequest({ inputs: [input], outputs: [{ name: OUTPUT, parameters: { classification: 3 } }] })));
    const [output] = body.outputs;
    expect(output).toMatchObject({ name: OUTPUT, datatype: 'BYTES', shape: [2, 3] });
    const strings = output!.data as string[];
    expect(strings).toEqual(expected.flatMap((image) => image.predictions.map((p) => `${Math.fround(p.probability)}:${p.index}:${p.label}`)));
    for (const s of strings) expect(s).toMatch(/^[\d.e-]+:\d{1,3}:.+$/);

    const res = await call(INFER, jsonRequest({ inputs: [input], outputs: [{ name: OUTPUT, parameters: { classification: 3, binary_data: true } }] }));
    const { json, parts } = await readBinary(res);
    expect(json.outputs[0]).toMatchObject({ datatype: 'BYTES', shape: [2, 3] });
    expect(readBytesTensor(parts[0]!)).toEqual(strings);
  });
});

describe('POST /v2/models/{model}/infer with a preprocessed FP32 tensor', () => {
  it('gives the probabilities the BYTES path gives for the same images, in JSON and binary', async () => {
    const tensor = await preprocessed(cat, coffee);
    const fromImages = await ok(await call(INFER, jsonRequest({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], data: [base64(cat), base64(coffee)] }] })));
    const json = await ok(await call(INFER, jsonRequest({ inputs: [{ name: 'data', datatype: 'FP32', shape: [2, 3, 224, 224], data: Array.from(tensor) }] })));
    const binary = await ok(await call(INFER, binaryRequest({ inputs: [{ name: 'data', datatype: 'FP32', shape: [2, 3, 224, 224], parameters: { binary_data_size: tensor.byteLength } }] }, new Uint8Array(tensor.buffer))));
    expect(json.outputs[0]).toMatchObject({ name: OUTPUT, datatype: 'FP32', shape: [2, 1000] });
    expect(json.outputs[0]!.data).toEqual(fromImages.outputs[0]!.data);
    expect(binary.outputs[0]!.data).toEqual(fromImages.outputs[0]!.data);
  });

  it('nested JSON data is read row-major like flat data', async () => {
    const tensor = await preprocessed(cat);
    const flat = await ok(await call(INFER, jsonRequest({ inputs: [{ name: 'data', datatype: 'FP32', shape: [1, 3, 224, 224], data: Array.from(tensor) }] })));
    const rows: number[][] = [];
    for (let i = 0; i < tensor.length; i += 224) rows.push(Array.from(tensor.subarray(i, i + 224)));
    const nested = await ok(await call(INFER, jsonRequest({ inputs: [{ name: 'data', datatype: 'FP32', shape: [1, 3, 224, 224], data: rows }] })));
    expect(nested.outputs[0]!.data).toEqual(flat.outputs[0]!.data);
  });
});

describe('errors as the protocol has them: { error }', () => {
  const image = () => ({ name: 'image', datatype: 'BYTES', shape: [1], data: [base64(cat)] });

  it('wrong shape', async () => {
    const small = new Float32Array(3 * 100 * 100);
    await expectError(await call(INFER, jsonRequest({ inputs: [{ name: 'data', datatype: 'FP32', shape: [1, 3, 100, 100], data: Array.from(small) }] })), 400, /shape \[1,3,100,100\] does not match the model's \[N,3,224,224\]/);
    await expectError(await call(INFER, jsonRequest({ inputs: [{ name: 'data', datatype: 'FP32', shape: [1, 3, 224, 224], data: [1, 2, 3] }] })), 400, /has 3 values/);
    await expectError(await call(INFER, jsonRequest({ inputs: [{ ...image(), shape: [2] }] })), 400, /has 1 elements, its shape \[2\]/);
  });

  it('wrong datatype, unknown input or output, not exactly one input', async () => {
    await expectError(await call(INFER, jsonRequest({ inputs: [{ ...image(), datatype: 'FP32' }] })), 400, /"image" must be BYTES/);
    await expectError(await call(INFER, jsonRequest({ inputs: [{ name: 'data', datatype: 'INT64', shape: [1], data: [1] }] })), 400, /"data" must be FP32/);
    await expectError(await call(INFER, jsonRequest({ inputs: [{ ...image(), name: 'pixels' }] })), 400, /unknown input "pixels"/);
    await expectError(await call(INFER, jsonRequest({ inputs: [image(), image()] })), 400, /exactly one input/);
    await expectError(await call(INFER, jsonRequest({ inputs: [image()], outputs: [{ name: 'logits' }] })), 400, /unknown output "logits"/);
    await expectError(await call(INFER, jsonRequest({ inputs: [image()], outputs: [{ name: OUTPUT, parameters: { classification: 0 } }] })), 400, /classification/);
    await expectError(await call(INFER, jsonRequest({ inputs: [{ ...image(), data: ['not base64!'] }] })), 400, /not base64/);
  });

  it('bad Inference-Header-Content-Length and binary sizes', async () => {
    const json = { inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: cat.length + 4 } }] };
    const good = binaryRequest(json, bytesBinary(cat));
    const body = good.body as Uint8Array;
    const withLength = (length: string) => call(INFER, { method: 'POST', body, headers: { 'Inference-Header-Content-Length': length } });
    await expectError(await withLength('abc'), 400, /Inference-Header-Content-Length/);
    await expectError(await withLength(String(body.length + 1)), 400, /Inference-Header-Content-Length/);
    await expectError(await withLength('10'), 400, /not valid JSON/);
    // No header: the whole body is taken as JSON.
    await expectError(await call(INFER, { method: 'POST', body }), 400, /not valid JSON/);
    await expectError(await call(INFER, jsonRequest(json)), 400, /no Inference-Header-Content-Length/);
    const short = { inputs: [{ ...json.inputs[0], parameters: { binary_data_size: cat.length } }] };
    await expectError(await call(INFER, binaryRequest(short, bytesBinary(cat))), 400, /claimed by no input/);
    const long = { inputs: [{ ...json.inputs[0], parameters: { binary_data_size: cat.length + 5 } }] };
    await expectError(await call(INFER, binaryRequest(long, bytesBinary(cat))), 400, /runs past the body/);
    const prefix = bytesBinary(cat);
    prefix[0] = prefix[0]! + 1; // one byte more than there is
    await expectError(await call(INFER, binaryRequest(json, prefix)), 400, /claims \d+ bytes/);
  });

  it('image errors keep their status: not an image 415, corrupt 422', async () => {
    const text = new TextEncoder().encode('hello, not an image');
    await expectError(await call(INFER, jsonRequest({ inputs: [{ ...image(), data: [base64(text)] }] })), 415);
    await expectError(await call(INFER, jsonRequest({ inputs: [{ ...image(), data: [base64(cat.subarray(0, 2000))] }] })), 422);
  });

  it('routes and methods: 404 and 405 with Allow', async () => {
    await expectError(await call('/v2/nothing'), 404);
    const res = await call(INFER);
    await expectError(res, 405);
    expect(res.headers.get('Allow')).toBe('POST');
  });

  it('browsers may send and read Inference-Header-Content-Length when CORS is on', async () => {
    const vars = { CORS_ORIGINS: 'https://app.example' } as Partial<Env>;
    const origin = { Origin: 'https://app.example' };
    const preflight = await call(INFER, { method: 'OPTIONS', headers: { ...origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'inference-header-content-length' } }, vars);
    expect(preflight.headers.get('Access-Control-Allow-Headers')?.toLowerCase()).toContain('inference-header-content-length');
    const init = jsonRequest({ parameters: { binary_data_output: true }, inputs: [image()] });
    const res = await call(INFER, { ...init, headers: { ...(init.headers as Record<string, string>), ...origin } }, vars);
    expect(res.status).toBe(200);
    expect(res.headers.get('Access-Control-Expose-Headers')?.toLowerCase()).toContain('inference-header-content-length');
  });

  it('the API key, body limit and image count of /predict apply; health stays open', async () => {
    const vars = { API_KEY: 'secret' } as Partial<Env>;
    await expectError(await call(INFER, jsonRequest({ inputs: [image()] }), vars), 401);
    await expectError(await call(`/v2/models/${MODEL}`, {}, vars), 401);
    expect((await call('/v2/health/live', {}, vars)).status).toBe(200);
    expect((await call('/v2/health/ready', {}, vars)).status).toBe(200);
    const authorized = await call(INFER, { ...jsonRequest({ inputs: [image()] }), headers: { 'Content-Type': 'application/json', Authorization: 'Bearer secret' } }, vars);
    expect(authorized.status).toBe(200);
    await expectError(await call(INFER, jsonRequest({ inputs: [image()] }), { MAX_BODY_BYTES: '1000' }), 413);
    await expectError(await call(INFER, jsonRequest({ inputs: [{ ...image(), shape: [2], data: [base64(cat), base64(cat)] }] }), { MAX_IMAGES: '1' }), 413, /too many images/);
  });
});

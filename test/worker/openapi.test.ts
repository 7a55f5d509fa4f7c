/**
 * GET /openapi.json and GET /docs: the document is valid OpenAPI 3.1 (checked by an
 * independent validator, which is shown to reject a broken copy), describes every route the
 * app serves and nothing it does not, and the validation generated from its schemas answers
 * in our error shapes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import { ModelDetailSchema, ModelListSchema, PredictBodySchema, V2ModelMetadataSchema, ConceptSchema, PingSchema } from '../../src/openapi';
import { call, fixture, form, seedModel, testEnv, type ErrorAnswer } from './helpers';

interface Operation {
  security?: unknown[];
  parameters?: Array<{ name: string; in: string }>;
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }>; headers?: Record<string, unknown> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'];

let doc: Document;
let cat: Uint8Array;

beforeAll(async () => {
  await seedModel('resnet18v1');
  cat = await fixture('test/fixtures/photos/chelsea.jpg');
  const res = await call('/openapi.json');
  expect(res.status).toBe(200);
  expect(res.headers.get('Content-Type')).toMatch(/^application\/json/);
  doc = (await res.json()) as Document;
});

/** Every documented operation as `METHOD /path/{param}`. */
const operations = () =>
  Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => ({ path, method: m, op: item[m]! })));

/** Validated by the node side of the pool (test/openapi-validator.ts): the validator reads its schemas from disk. */
async function validate(document: unknown): Promise<{ valid: boolean; errors: unknown }> {
  const res = await (testEnv as unknown as { OPENAPI_VALIDATOR: Fetcher }).OPENAPI_VALIDATOR.fetch('http://validator/', { method: 'POST', body: JSON.stringify(document) });
  expect(res.status).toBe(200);
  return (await res.json()) as { valid: boolean; errors: unknown };
}

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document, and the validator does reject a broken one', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await validate(doc);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);

    // The same document broken three ways: each is refused (so the check above can fail).
    const noInfo = structuredClone(doc) as unknown as Record<string, unknown>;
    delete noInfo.info;
    const badResponses = structuredClone(doc);
    badResponses.paths['/ping']!.get!.responses = 'ok' as never;
    const danglingRef = structuredClone(doc);
    danglingRef.paths['/predict']!.post!.responses['200']!.content!['application/json']!.schema = { $ref: '#/components/schemas/Nowhere' };
    for (const broken of [noInfo, badResponses, danglingRef]) expect((await validate(broken)).valid).toBe(false);
  });

  it('describes every route the app serves, and only those', () => {
    // The app's own routing table: handlers, not middleware (`*` paths) nor the 405 catch-alls (ALL).
    const served = new Set(
      createApp()
        .routes.filter((r) => r.method !== 'ALL' && !r.path.includes('*'))
        .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([^/]+)/g, '{$1}')}`),
    );
    const documented = new Set(operations().map(({ method, path }) => `${method} ${path}`));
    expect([...served].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !served.has(r))).toEqual([]);
    // The compatibility routes, the v2 protocol and the docs themselves are among them.
    for (const route of ['post /{model}/predict', 'post /predictions/{model}', 'post /v2/models/{model}/versions/{version}/infer', 'post /jobs', 'get /jobs/{id}', 'get /docs', 'get /openapi.json']) {
      expect(documented).toContain(route);
    }
  });

  it('answers 405 with Allow, for every documented path, to a method it does not document', async () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      const allow = Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => m.toUpperCase());
      const res = await call(path.replace(/\{[^}]+\}/g, 'x'), { method: 'DELETE' });
      expect(res.status, path).toBe(405);
      expect(res.headers.get('Allow'), path).toBe(allow.join(', '));
    }
  });

  it('documents auth: both headers, open routes exactly those the app leaves open', async () => {
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKey', 'bearer']);
    const open = operations().filter(({ op }) => Array.isArray(op.security) && op.security.length === 0);
    expect(open.map(({ method, path }) => `${method} ${path}`).sort()).toEqual(['get /docs', 'get /openapi.json', 'get /ping', 'get /v2/health/live', 'get /v2/health/ready']);
    for (const { path, op } of operations()) {
      const url = path.replace(/\{[^}]+\}/g, 'x');
      const method = Object.entries(doc.paths[path]!).find(([, o]) => o === op)![0].toUpperCase();
      const res = await call(url, { method }, { API_KEY: 'sesame' });
      if (open.some((o) => o.op === op)) expect(res.status, `${method} ${path}`).not.toBe(401);
      else {
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(op.responses['401'], `${method} ${path}`).toBeDefined();
      }
    }
  });

  it('documents the error statuses in the error shape of each path, 503 with Retry-After', () => {
    for (const { path, method, op } of operations()) {
      const where = `${method} ${path}`;
      expect(op.responses['500'], where).toBeDefined();
      const shape = path.startsWith('/v2') ? '#/components/schemas/V2Error' : '#/components/schemas/Error';
      for (const [status, response] of Object.entries(op.responses)) {
        // Health checks answer 503 in their own shape (unhealthy, not ready).
        if (Number(status) < 400 || ((path === '/ping' || path.endsWith('/ready')) && status === '503')) continue;
        expect(response.content?.['application/json']?.schema?.$ref, `${where} ${status}`).toBe(shape);
        if (status === '503') expect(response.headers?.['Retry-After'], `${where} 503`).toBeDefined();
      }
    }
    // What the image routes can answer: the body, the image, the model, the URL input, the load.
    const predict = doc.paths['/predict']!.post!;
    expect(Object.keys(predict.responses).sort()).toEqual(['200', '400', '401', '404', '413', '415', '422', '500', '502', '503', '504']);
  });

  it('documents the upload bodies (multipart, raw image, URL) without validating them', async () => {
    for (const path of ['/predict', '/predict/{model}', '/predictions/{model}', '/{model}/predict', '/moderate', '/moderate/{policy}']) {
      const types = Object.keys(doc.paths[path]!.post!.requestBody!.content).sort();
      expect(types, path).toEqual(['application/json', 'application/octet-stream', 'image/*', 'multipart/form-data']);
    }
    expect(doc.components.schemas).toHaveProperty('UrlInput');
    expect(doc.components.schemas).toHaveProperty('V2InferenceRequest');
    // A raw body with no Content-Type at all still reaches the upload reader (no media type gate).
    const res = await call('/predict?topk=2', { method: 'POST', body: cat });
    expect(res.status).toBe(200);
  });
});

describe('validation from the schemas', () => {
  async function expectError(res: Response, code: number, type: string, message: RegExp) {
    expect(res.status).toBe(code);
    const body = (await res.json()) as ErrorAnswer;
    expect(body).toMatchObject({ code, type });
    expect(body.message).toMatch(message);
  }

  it('answers our JSON error, naming the field', async () => {
    await expectError(await call('/predict?topk=0', { method: 'POST', body: cat }), 400, 'bad_request', /query\.topk: topk must be an integer from 1 to 1000, got "0"/);
    await expectError(await call('/predictions/resnet18v1?topk=x', { method: 'POST', body: cat }), 400, 'bad_request', /query\.topk/);
    await expectError(await call('/concepts'), 400, 'bad_request', /query\.q: which concept/);
    await expectError(await call('/policies/Not_A_Name'), 400, 'bad_request', /path\.name: policy name "Not_A_Name" must be/);
    await expectError(await call('/jobs/not-a-uuid'), 400, 'bad_request', /path\.id: a job id is a UUID/);
    const job = (body: string, type = 'application/json') => call('/jobs', { method: 'POST', body, headers: { 'Content-Type': type } });
    await expectError(await job('{"key":"a.jpg","colour":"red"}'), 400, 'bad_request', /invalid job: body: .*colour/);
    await expectError(await job('{"key":'), 400, 'bad_request', /malformed JSON/);
    // JSON by our rule but not by @hono/zod-openapi's gate: our 415, not the library's bare one.
    await expectError(await job('{"key":"a.jpg"}', 'application/json ;charset=utf-8'), 415, 'unsupported_media_type', /send the job as JSON/);
    await expectError(await job('key=a.jpg', 'text/plain'), 415, 'unsupported_media_type', /send the job as JSON/);
  });

  it('answers /v2 validation failures in the protocol error shape', async () => {
    const res = await call('/v2/models/resnet18v1/infer', { method: 'POST', body: '{"inputs":[]}', headers: { 'Content-Type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(Object.keys((await res.json()) as object)).toEqual(['error']);
  });
});

describe('answers match their documented schemas', () => {
  it('/predict, /models, /models/{model}, /concepts, /ping, /v2/models/{model}', async () => {
    // Strict at the top level: a field the schema does not describe fails too (nested ones: src/openapi/check.ts).
    const strict = <T>(schema: { parse: (v: unknown) => T }, value: unknown) => schema.parse(value);
    const predicted = await call('/predict?concepts=dog', { method: 'POST', body: form(cat) });
    strict(PredictBodySchema.strict(), await predicted.json());
    strict(ModelListSchema.strict(), await (await call('/models')).json());
    strict(ModelDetailSchema.strict(), await (await call('/models/resnet18v1')).json());
    strict(ConceptSchema.strict(), await (await call('/concepts?q=dog')).json());
    strict(PingSchema.strict(), await (await call('/ping')).json());
    strict(V2ModelMetadataSchema.strict(), await (await call('/v2/models/resnet18v1')).json());
  });
});

describe('GET /docs', () => {
  it('answers the reference page, which loads /openapi.json, without the API key', async () => {
    const res = await call('/docs', {}, { API_KEY: 'sesame' });
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<html/i);
    expect(html).toContain('/openapi.json');
    expect((await call('/openapi.json', {}, { API_KEY: 'sesame' })).status).toBe(200);
  });
});

/** POST /moderate end to end in workerd: policy choice (path, inline, DEFAULT_POLICY), answer shape, auth and body limit. */
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, policyHash, policyKey, type Policy } from '../../src/policies/schema';
import { call, fixture, form, seedModel, testEnv, type ErrorAnswer, type NativeAnswer } from './helpers';

interface ModerateAnswer {
  model: { id: string; weights: string };
  notice?: string;
  policy: { name: string; sha256: string };
  images: Array<{
    width: number;
    height: number;
    decision: 'allow' | 'flag' | 'block';
    triggered: Array<{ concept: string; name: string; probability: number; threshold: number; action: string }>;
    concepts: Array<{ id: string; name: string; gloss: string; probability: number; classes: number }>;
    predictions: Array<{ index: number; synset: string; label: string; probability: number }>;
  }>;
  timings: Record<string, number>;
}

// entity (n00001740) is above all 1000 classes, so its probability is 1: rules on it always
// fire or never do, whatever the synthetic weights answer.
const POLICIES: Policy[] = [
  { name: 'mod-block', rules: [{ concept: 'entity', threshold: 0.99, action: 'block' }, { concept: 'weapon', threshold: 0, action: 'flag' }] },
  { name: 'mod-flag', rules: [{ concept: 'n00001740', threshold: 0.5, action: 'flag' }, { concept: 'weapon', threshold: 1, action: 'block' }] },
  { name: 'mod-allow', rules: [{ concept: 'weapon', threshold: 1, action: 'block' }, { concept: 'dog', threshold: 1, action: 'flag' }] },
];

let cat: Uint8Array;

beforeAll(async () => {
  await seedModel('resnet18v1');
  cat = await fixture('test/fixtures/photos/chelsea.jpg');
  for (const p of POLICIES) await testEnv.MODELS.put(policyKey(p.name), JSON.stringify(p));
});

async function expectError(res: Response, code: number, type: string, message?: RegExp): Promise<ErrorAnswer> {
  expect(res.status).toBe(code);
  const body = (await res.json()) as ErrorAnswer;
  expect(body).toMatchObject({ code, type });
  if (message) expect(body.message).toMatch(message);
  return body;
}

const post = (path: string, body: BodyInit, vars: Partial<Env> = {}, headers: Record<string, string> = {}) =>
  call(path, { method: 'POST', body, headers }, vars);

describe('POST /moderate/:policy', () => {
  it('answers the model, the policy and its hash, and per image the decision, fired rules, concepts and top 5', async () => {
    const res = await post('/moderate/mod-block', form(cat));
    expect(res.status).toBe(200);
    const body = (await res.json()) as ModerateAnswer;
    expect(body.model).toMatchObject({ id: 'resnet18v1', weights: 'synthetic' });
    expect(body.notice).toMatch(/synthetic weights/);
    expect(res.headers.get('X-Model-Weights')).toBe('synthetic');
    expect(res.headers.get('Warning')).toMatch(/synthetic weights/);
    expect(body.policy).toEqual({ name: 'mod-block', sha256: await policyHash(POLICIES[0]!) });
    const [image] = body.images;
    expect(image).toMatchObject({ width: 451, height: 300, decision: 'block' });
    expect(image!.triggered.map((t) => [t.concept, t.action, t.threshold])).toEqual([['n00001740', 'block', 0.99], ['n04565375', 'flag', 0]]);
    expect(image!.concepts.map((c) => [c.id, c.classes])).toEqual([['n00001740', 1000], ['n04565375', 7]]);
    expect(image!.concepts[0]!.probability).toBeCloseTo(1, 6);
    expect(image!.concepts[1]!.gloss).toMatch(/^any instrument or instrumentality used in fighting or hunting/);
    expect(image!.predictions).toHaveLength(5);
    expect(Object.keys(body.timings).sort()).toEqual(['decode', 'inference', 'model', 'preprocess', 'total']);
  });

  it('flags and allows by the strictest fired rule', async () => {
    const flag = (await (await post('/moderate/mod-flag', cat)).json()) as ModerateAnswer;
    expect(flag.images[0]).toMatchObject({ decision: 'flag', triggered: [{ concept: 'n00001740', action: 'flag' }] });
    const allow = (await (await post('/moderate/mod-allow', cat)).json()) as ModerateAnswer;
    expect(allow.images[0]).toMatchObject({ decision: 'allow', triggered: [] });
    expect(allow.images[0]!.concepts.map((c) => c.id)).toEqual(['n04565375', 'n02084071']);
  });

  it('scores concepts exactly as /predict?concepts= does for the same image, one decision per image of a batch', async () => {
    const [moderated, predicted] = await Promise.all([
      post('/moderate/mod-allow', form(cat, cat)).then((r) => r.json() as Promise<ModerateAnswer>),
      post('/predict?concepts=weapon,dog', form(cat)).then((r) => r.json() as Promise<NativeAnswer & { images: Array<{ concepts: unknown }> }>),
    ]);
    expect(moderated.images).toHaveLength(2);
    for (const image of moderated.images) {
      expect(image.decision).toBe('allow');
      expect(image.concepts).toEqual(predicted.images[0]!.concepts);
      expect(image.predictions).toEqual(predicted.images[0]!.predictions);
    }
  });

  it('404 for a policy that is not stored, 400 for a malformed name', async () => {
    await expectError(await post('/moderate/no-such-policy', cat), 404, 'not_found', /no policy named "no-such-policy"/);
    await expectError(await post('/moderate/Not_A_Name', cat), 400, 'bad_request', /policy name/);
  });
});

describe('POST /moderate (DEFAULT_POLICY or inline)', () => {
  it('400 naming DEFAULT_POLICY when it is unset and no policy is sent', async () => {
    await expectError(await post('/moderate', cat, { DEFAULT_POLICY: '' }), 400, 'bad_request', /DEFAULT_POLICY is not set/);
  });

  it('uses DEFAULT_POLICY when set', async () => {
    const res = await post('/moderate', cat, { DEFAULT_POLICY: 'mod-flag' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as ModerateAnswer;
    expect(body.policy.name).toBe('mod-flag');
    expect(body.images[0]!.decision).toBe('flag');
  });

  it('takes an inline policy from the multipart field "policy", instead of DEFAULT_POLICY', async () => {
    const inline: Policy = { name: 'inline-one', rules: [{ concept: 'entity', threshold: 0.9, action: 'block' }] };
    const res = await post('/moderate', form(cat, { field: 'policy', bytes: JSON.stringify(inline) }), { DEFAULT_POLICY: 'mod-allow' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as ModerateAnswer;
    expect(body.policy).toEqual({ name: 'inline-one', sha256: await policyHash(inline) });
    expect(body.policy.sha256).not.toBe(await policyHash({ ...inline, name: 'inline-two' }));
    expect(body.images[0]!.decision).toBe('block');
  });

  it('400 for a path policy and an inline one together (multipart or JSON)', async () => {
    const inline = JSON.stringify({ name: 'x', rules: [{ concept: 'dog', threshold: 0.5, action: 'flag' }] });
    await expectError(await post('/moderate/mod-flag', form(cat, { field: 'policy', bytes: inline })), 400, 'bad_request', /two policies/);
    const json = JSON.stringify({ url: 'https://example.com/cat.jpg', policy: JSON.parse(inline) as unknown });
    await expectError(await post('/moderate/mod-flag', json, {}, { 'Content-Type': 'application/json' }), 400, 'bad_request', /two policies/);
  });

  it('400 naming the field of an invalid inline policy, before any image is read', async () => {
    const bad = { name: 'x', rules: [{ concept: 'dog', threshold: 2, action: 'flag' }] };
    await expectError(await post('/moderate', form(cat, { field: 'policy', bytes: JSON.stringify(bad) })), 400, 'bad_request', /policy\.rules\[0\]\.threshold: Too big/);
    const json = JSON.stringify({ url: 'https://example.com/cat.jpg', policy: { ...bad, rules: [{ concept: 'qwertyuiop', threshold: 0.5, action: 'flag' }] } });
    await expectError(await post('/moderate', json, {}, { 'Content-Type': 'application/json' }), 400, 'bad_request', /policy\.rules\[0\]\.concept: "qwertyuiop"/);
    await expectError(await post('/moderate', form(cat, { field: 'policy', bytes: '{not json' })), 400, 'bad_request', /field "policy" is not JSON/);
    await expectError(await post('/moderate', form(cat, { field: 'policy', bytes: new TextEncoder().encode(JSON.stringify(bad)) })), 400, 'bad_request', /must be text/);
  });
});

describe('the new routes sit behind the API key and the body limit', () => {
  const vars = { API_KEY: 'sesame-0123456789', DEFAULT_POLICY: 'mod-flag' };

  it('401 without the key on /moderate, /concepts and /policies; open with it', async () => {
    await expectError(await post('/moderate', cat, vars), 401, 'unauthorized');
    await expectError(await post('/moderate/mod-flag', cat, vars), 401, 'unauthorized');
    await expectError(await call('/concepts?q=dog', {}, vars), 401, 'unauthorized');
    await expectError(await call('/policies', {}, vars), 401, 'unauthorized');
    await expectError(await call('/policies/mod-flag', {}, vars), 401, 'unauthorized');
    expect((await call('/concepts?q=dog', { headers: { 'X-API-Key': vars.API_KEY } }, vars)).status).toBe(200);
    expect((await call('/policies/mod-flag', { headers: { Authorization: `Bearer ${vars.API_KEY}` } }, vars)).status).toBe(200);
    expect((await post('/moderate', cat, vars, { Authorization: `Bearer ${vars.API_KEY}` })).status).toBe(200);
  });

  it('413 for a body over MAX_BODY_BYTES', async () => {
    await expectError(await post('/moderate/mod-flag', cat, { MAX_BODY_BYTES: '1000' }), 413, 'payload_too_large');
    await expectError(await post('/moderate', form(cat), { MAX_BODY_BYTES: '1000', DEFAULT_POLICY: 'mod-flag' }), 413, 'payload_too_large');
  });

  it('405 with Allow for the wrong method', async () => {
    const get = await call('/moderate');
    await expectError(get, 405, 'method_not_allowed');
    expect(get.headers.get('Allow')).toBe('POST');
    const postConcepts = await call('/concepts', { method: 'POST' });
    await expectError(postConcepts, 405, 'method_not_allowed');
    expect(postConcepts.headers.get('Allow')).toBe('GET');
    expect((await call('/policies/mod-flag', { method: 'PUT' })).headers.get('Allow')).toBe('GET');
  });
});

it('the stored canonical form hashes as the answer says', async () => {
  expect(await policyHash(POLICIES[1]!)).toBe(
    [...new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonicalJson(POLICIES[1]!))))].map((b) => b.toString(16).padStart(2, '0')).join(''),
  );
});

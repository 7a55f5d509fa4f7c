/**
 * Asynchronous moderation in workerd: POST /jobs and GET /jobs/:id, the queue consumer (through
 * the pool's real local queue, and driven batch by batch with createMessageBatch so that
 * attempts and retries can be checked one by one), R2 notifications, signed webhooks to a
 * local receiver (test/webhook-server.ts), retries, the dead-letter queue, poison objects
 * and duplicate deliveries.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import worker from '../../src/index';
import { uuidV5 } from '../../src/jobs/ids';
import { jobKey, updateJob } from '../../src/jobs/store';
import type { JobMessage, JobRecord } from '../../src/jobs/types';
import { policyKey, type Policy } from '../../src/policies/schema';
import type { ReceivedHook } from '../webhook-server';
import { call, fixture, seedModel, testEnv, type ErrorAnswer } from './helpers';

const HOOKS = inject('webhookServer');
const IMAGES = inject('urlServer');
const SECRET = 'test-webhook-secret';
const QUEUE = 'edge-resnet-moderation';
const DLQ = 'edge-resnet-moderation-dlq';

// entity is above every class (probability 1): this policy always blocks, whatever the weights.
const BLOCK: Policy = { name: 'jobs-block', rules: [{ concept: 'entity', threshold: 0.5, action: 'block' }] };
const ALLOW: Policy = { name: 'jobs-allow', rules: [{ concept: 'weapon', threshold: 1, action: 'block' }] };

let cat: Uint8Array;

beforeAll(async () => {
  await seedModel('resnet18v1');
  // Eighth-width ResNet-34: fast enough for many jobs in a row.
  await seedModel('resnet34v1');
  cat = await fixture('test/fixtures/photos/chelsea.jpg');
  for (const p of [BLOCK, ALLOW]) await testEnv.MODELS.put(policyKey(p.name), JSON.stringify(p));
  await testEnv.UPLOADS.put('cat.jpg', cat);
  await testEnv.UPLOADS.put('poison.jpg', new TextEncoder().encode('<html>not an image</html>'));
});

const postJob = (body: unknown, vars: Partial<Env> = {}, headers: Record<string, string> = {}) =>
  call('/jobs', { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json', ...headers } }, vars);

async function getJob(id: string): Promise<JobRecord> {
  const res = await call(`/jobs/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as JobRecord;
}

/** Polls GET /jobs/:id until `done(record)` or the timeout. */
async function waitFor(id: string, done: (r: JobRecord) => boolean, timeoutMs = 60_000): Promise<JobRecord> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const record = await getJob(id);
    if (done(record)) return record;
    if (Date.now() > until) throw new Error(`job ${id} still ${record.status} (delivery ${record.delivery.status}) after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const final = (r: JobRecord) => r.status === 'done' || r.status === 'failed';
const settled = (r: JobRecord) => final(r) && r.delivery.status !== 'pending';

async function received(name: string): Promise<ReceivedHook[]> {
  const res = await fetch(`${HOOKS}/received/${name}`);
  return (await res.json()) as ReceivedHook[];
}

/** A fresh receiver name per test, so that deliveries never mix. */
const hookName = (what: string) => `${what}-${crypto.randomUUID().slice(0, 8)}`;

/** Checks X-Signature as a receiver would (independently of src/webhooks): HMAC and freshness. */
async function expectSigned(hook: ReceivedHook): Promise<void> {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(hook.headers['x-signature'] ?? '');
  expect(m, `X-Signature: ${hook.headers['x-signature']}`).not.toBeNull();
  const t = Number(m![1]);
  expect(Math.abs(Date.now() / 1000 - t)).toBeLessThan(300);
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const mac = new Uint8Array(m![2]!.match(/../g)!.map((h) => parseInt(h, 16)));
  expect(await crypto.subtle.verify('HMAC', key, mac, new TextEncoder().encode(`${t}.${hook.body}`))).toBe(true);
  // The same body under another secret does not verify.
  const other = await crypto.subtle.importKey('raw', new TextEncoder().encode('other'), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  expect(await crypto.subtle.verify('HMAC', other, mac, new TextEncoder().encode(`${t}.${hook.body}`))).toBe(false);
}

describe('a job through the queue', () => {
  it('POST /jobs { key } answers 202, the consumer moderates it, GET /jobs/:id shows the result and a signed webhook arrives', async () => {
    const name = hookName('e2e');
    const res = await postJob({ key: 'cat.jpg', policy: BLOCK.name, callback: `${HOOKS}/hook/${name}`, metadata: { upload: 42 } });
    expect(res.status).toBe(202);
    const { id, status } = (await res.json()) as { id: string; status: string };
    expect(status).toBe('queued');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('Location')).toBe(`/jobs/${id}`);

    const record = await waitFor(id, settled);
    expect(record.status).toBe('done');
    expect(record.delivery).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(record).not.toHaveProperty('callback');
    expect(record.metadata).toEqual({ upload: 42 });

    // The same body as POST /moderate gives for the same image and policy.
    const direct = (await (await call(`/moderate/${BLOCK.name}`, { method: 'POST', body: cat })).json()) as Record<string, unknown>;
    const { timings: _t1, ...result } = record.result as unknown as Record<string, unknown>;
    const { timings: _t2, ...expected } = direct;
    expect(result).toEqual(expected);
    expect(record.result!.images[0]!.decision).toBe('block');

    const hooks = await received(name);
    expect(hooks).toHaveLength(1);
    await expectSigned(hooks[0]!);
    expect(hooks[0]!.headers['idempotency-key']).toBe(id);
    expect(hooks[0]!.headers['content-type']).toBe('application/json');
    const body = JSON.parse(hooks[0]!.body) as Record<string, unknown>;
    expect(body).toMatchObject({ id, status: 'done', metadata: { upload: 42 } });
    expect(body.result).toEqual(record.result);
  });
});

async function expectError(res: Response, code: number, type: string, message?: RegExp): Promise<void> {
  const body = (await res.json()) as ErrorAnswer;
  expect({ status: res.status, ...body }).toMatchObject({ status: code, code, type });
  if (message) expect(body.message).toMatch(message);
}

describe('POST /jobs refuses at once what could never run', () => {
  it('400s naming the field: no source, two sources, unknown fields, oversized metadata and policy, invalid inline policy', async () => {
    await expectError(await postJob({}), 400, 'bad_request', /exactly one of "key".*"url"/);
    await expectError(await postJob({ key: 'cat.jpg', url: `${IMAGES}/image/chelsea.jpg` }), 400, 'bad_request', /exactly one/);
    await expectError(await postJob({ key: 'cat.jpg', colour: 'red' }), 400, 'bad_request', /colour/);
    await expectError(await postJob({ key: 'cat.jpg', metadata: { pad: 'x'.repeat(4096) } }), 400, 'bad_request', /body\.metadata: must be at most 4096 bytes/);
    const huge = { name: 'huge', rules: Array.from({ length: 100 }, () => ({ concept: 'x'.repeat(100), threshold: 0.5, action: 'block' })), pad: 'y'.repeat(8000) };
    await expectError(await postJob({ key: 'cat.jpg', policy: huge }), 400, 'bad_request', /body\.policy: must be at most 16384 bytes/);
    await expectError(await postJob({ key: 'cat.jpg', policy: { name: 'p', rules: [{ concept: 'dog', threshold: 2, action: 'block' }] } }), 400, 'bad_request', /policy\.rules\[0\]\.threshold/);
    await expectError(await postJob({ key: 'cat.jpg', model: '../x' }), 400, 'bad_request', /body\.model/);
    // The body itself is bounded well under MAX_BODY_BYTES: a job is small.
    await expectError(await postJob({ key: 'cat.jpg', pad: 'z'.repeat(64 * 1024) }), 413, 'payload_too_large', /job body over/);
  });

  it('404 for an unknown policy or object, 413 for an object over MAX_BODY_BYTES, 400 for a refused URL', async () => {
    await expectError(await postJob({ key: 'cat.jpg', policy: 'no-such-policy' }), 404, 'not_found', /no-such-policy/);
    await expectError(await postJob({ key: 'missing.jpg' }), 404, 'not_found', /missing\.jpg/);
    await expectError(await postJob({ key: 'cat.jpg' }, { MAX_BODY_BYTES: '1000' }), 413, 'payload_too_large', /MAX_BODY_BYTES/);
    // The URL input rules: 127.0.0.1 only when URL_HOSTS lists it.
    await expectError(await postJob({ url: `${IMAGES}/image/chelsea.jpg` }), 400, 'bad_request', /loopback/);
  });

  it('callbacks: https only unless ALLOW_HTTP_CALLBACKS, hosts in CALLBACK_HOSTS, URL input refusals otherwise, and a WEBHOOK_SECRET to sign with', async () => {
    const hook = `${HOOKS}/hook/refused`;
    await expectError(await postJob({ key: 'cat.jpg', callback: hook }, { ALLOW_HTTP_CALLBACKS: 'false' }), 400, 'bad_request', /https/);
    await expectError(await postJob({ key: 'cat.jpg', callback: hook }, { CALLBACK_HOSTS: 'hooks.example' }), 400, 'bad_request', /CALLBACK_HOSTS/);
    await expectError(await postJob({ key: 'cat.jpg', callback: hook }, { CALLBACK_HOSTS: '' }), 400, 'bad_request', /loopback/);
    await expectError(await postJob({ key: 'cat.jpg', callback: 'https://localhost/hook' }, { CALLBACK_HOSTS: '' }), 400, 'bad_request', /localhost/);
    await expectError(await postJob({ key: 'cat.jpg', callback: 'https://[::ffff:10.0.0.1]/hook' }, { CALLBACK_HOSTS: '' }), 400, 'bad_request', /private/);
    await expectError(await postJob({ key: 'cat.jpg', callback: 'not a url' }), 400, 'bad_request', /absolute URL/);
    await expectError(await postJob({ key: 'cat.jpg', callback: hook }, { WEBHOOK_SECRET: '' }), 400, 'bad_request', /WEBHOOK_SECRET/);
    expect(await received('refused')).toHaveLength(0);
  });

  it('415 without JSON, 401 without the API key, 405 for other methods; GET /jobs/:id 400 for a malformed id, 404 for an unknown one', async () => {
    await expectError(await call('/jobs', { method: 'POST', body: 'key=cat.jpg' }), 415, 'unsupported_media_type');
    await expectError(await postJob({ key: 'cat.jpg' }, { API_KEY: 'sesame' }), 401, 'unauthorized');
    await expectError(await call('/jobs', { method: 'GET' }), 405, 'method_not_allowed');
    await expectError(await call('/jobs/not-a-uuid'), 400, 'bad_request', /UUID/);
    await expectError(await call(`/jobs/${crypto.randomUUID()}`), 404, 'not_found');
  });
});

/** Runs one batch through the consumer as the queue would, with vars overridden. */
async function runBatch(bodies: Array<{ body: unknown; attempts?: number }>, vars: Partial<Env> = {}, queue = QUEUE) {
  const messages = bodies.map(({ body, attempts }) => ({ id: crypto.randomUUID(), timestamp: new Date(), attempts: attempts ?? 1, body }));
  const batch = createMessageBatch(queue, messages);
  // The pool's queue result keeps no retry delays: record them on the way.
  const delays = new Map<string, number | undefined>();
  for (const msg of batch.messages) {
    const retry = msg.retry.bind(msg);
    Object.defineProperty(msg, 'retry', { value: (options?: QueueRetryOptions) => (delays.set(msg.id, options?.delaySeconds), retry(options)) });
  }
  const ctx = createExecutionContext();
  await (worker as ExportedHandler<Env>).queue!(batch, { ...testEnv, ...vars }, ctx);
  return { ids: messages.map((m) => m.id), result: await getQueueResult(batch, ctx), delays };
}

/** Delivers `body` as attempt `attempts` and says what the consumer did with it. */
async function attempt(body: unknown, attempts: number, vars: Partial<Env> = {}, queue = QUEUE): Promise<{ ack: boolean; retryIn?: number }> {
  const { ids, result, delays } = await runBatch([{ body, attempts }], vars, queue);
  const retried = (result.retryMessages as Array<{ msgId: string }>).some((r) => r.msgId === ids[0]);
  const ack = result.explicitAcks.includes(ids[0]!);
  expect(ack !== retried, 'acked or retried, never both nor neither').toBe(true);
  expect(delays.has(ids[0]!)).toBe(retried);
  return retried ? { ack, retryIn: delays.get(ids[0]!) } : { ack };
}

const jobMessage = (fields: Partial<JobMessage> & Pick<JobMessage, 'source'>): JobMessage => ({
  type: 'job',
  id: crypto.randomUUID(),
  createdAt: new Date().toISOString(),
  ...fields,
});

async function record(id: string): Promise<JobRecord> {
  const object = await testEnv.MODELS.get(`jobs/${id}.json`);
  expect(object, `jobs/${id}.json`).not.toBeNull();
  return JSON.parse(await object!.text()) as JobRecord;
}

describe('the consumer, batch by batch', () => {
  it('a URL job: fetched with the URL input rules, moderated, stored, its webhook signed', async () => {
    const name = hookName('url');
    const msg = jobMessage({ source: { url: `${IMAGES}/image/chelsea.jpg` }, policy: ALLOW.name, callback: `${HOOKS}/hook/${name}`, metadata: ['a', 1] });
    expect(await attempt(msg, 1, { URL_HOSTS: '127.0.0.1' })).toEqual({ ack: true });
    const r = await record(msg.id);
    expect(r).toMatchObject({ status: 'done', source: { host: new URL(IMAGES).host }, attempts: 1, delivery: { status: 'delivered', attempts: 1 } });
    expect(r.result!.images[0]).toMatchObject({ width: 451, height: 300, decision: 'allow', triggered: [] });
    expect(r.result!.policy.name).toBe(ALLOW.name);
    const hooks = await received(name);
    expect(hooks).toHaveLength(1);
    await expectSigned(hooks[0]!);
    expect(JSON.parse(hooks[0]!.body)).toMatchObject({ id: msg.id, status: 'done', metadata: ['a', 1] });

    // Without URL_HOSTS the same URL is refused: a permanent failure, no retry.
    const refused = jobMessage({ source: { url: `${IMAGES}/image/chelsea.jpg` }, policy: ALLOW.name });
    expect(await attempt(refused, 1)).toEqual({ ack: true });
    expect(await record(refused.id)).toMatchObject({ status: 'failed', error: { code: 400, type: 'bad_request' } });
  });

  it('an upstream error on a URL job is transient: retried with backoff, failed after the last attempt', async () => {
    const msg = jobMessage({ source: { url: `${IMAGES}/status/503` }, policy: ALLOW.name });
    const vars = { URL_HOSTS: '127.0.0.1', RETRY_BASE_SECONDS: '3' };
    expect(await attempt(msg, 1, vars)).toEqual({ ack: false, retryIn: 3 });
    expect(await record(msg.id)).toMatchObject({ status: 'queued', lastError: expect.stringMatching(/503/) });
    expect(await attempt(msg, 3, vars)).toEqual({ ack: false, retryIn: 12 });
    // JOB_MAX_RETRIES (5): attempt 6 is the last.
    expect(await attempt(msg, 6, vars)).toEqual({ ack: true });
    const r = await record(msg.id);
    expect(r).toMatchObject({ status: 'failed', attempts: 6, error: { type: 'bad_gateway' } });
    expect(r.reason).toMatch(/^gave up after 6 attempts: .*503/);
    expect(r).not.toHaveProperty('lastError');
  });

  it('an R2 notification: the object head chooses policy and callback (only with CALLBACK_HOSTS), the id comes from bucket, key and eTag', async () => {
    const name = hookName('notify');
    const put = await testEnv.UPLOADS.put('incoming/notified.jpg', cat, { customMetadata: { policy: BLOCK.name, callback: `${HOOKS}/hook/${name}` } });
    const notification = (etag: string, action = 'PutObject') => ({
      account: 'acc',
      action,
      bucket: 'edge-resnet-uploads',
      object: { key: 'incoming/notified.jpg', size: cat.byteLength, eTag: etag },
      eventTime: new Date().toISOString(),
    });
    expect(await attempt(notification(put.etag), 1)).toEqual({ ack: true });
    const hooks = await received(name);
    expect(hooks).toHaveLength(1);
    await expectSigned(hooks[0]!);
    const id = hooks[0]!.headers['idempotency-key']!;
    const r = await record(id);
    expect(r).toMatchObject({ id, status: 'done', source: { key: 'incoming/notified.jpg' }, delivery: { status: 'delivered' } });
    expect(r.result!.policy.name).toBe(BLOCK.name);
    expect(r.result!.images[0]!.decision).toBe('block');
    // A UUID (version 5), and the same notification again is the same job.
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await attempt(notification(put.etag), 1)).toEqual({ ack: true });
    const again = await received(name);
    expect(again).toHaveLength(2);
    expect(again[1]!.headers['idempotency-key']).toBe(id);
    expect(again[1]!.body).toBe(again[0]!.body);

    // Other bytes under the same key (another eTag) are another job; without CALLBACK_HOSTS its metadata callback is refused.
    const put2 = await testEnv.UPLOADS.put('incoming/notified.jpg', await fixture('test/fixtures/photos/coffee.jpg'), { customMetadata: { policy: ALLOW.name, callback: `${HOOKS}/hook/${name}` } });
    expect(put2.etag).not.toBe(put.etag);
    const before = await testEnv.MODELS.list({ prefix: 'jobs/' });
    expect(await attempt(notification(put2.etag), 1, { CALLBACK_HOSTS: '' })).toEqual({ ack: true });
    const after = await testEnv.MODELS.list({ prefix: 'jobs/' });
    const created = after.objects.map((o) => o.key).filter((k) => !before.objects.some((o) => o.key === k));
    expect(created).toHaveLength(1);
    const r2 = JSON.parse(await (await testEnv.MODELS.get(created[0]!))!.text()) as JobRecord;
    expect(r2).toMatchObject({ status: 'done', delivery: { status: 'refused', reason: expect.stringMatching(/CALLBACK_HOSTS/) } });
    expect(r2.result!.images[0]!.decision).toBe('allow');
    expect(await received(name)).toHaveLength(2);

    // Deletions create no job.
    const beforeDelete = (await testEnv.MODELS.list({ prefix: 'jobs/' })).objects.length;
    expect(await attempt(notification(put2.etag, 'DeleteObject'), 1)).toEqual({ ack: true });
    expect((await testEnv.MODELS.list({ prefix: 'jobs/' })).objects.length).toBe(beforeDelete);
  });

  it('a callback that fails twice then succeeds: the job is done once, its webhook retried with backoff and the same body and Idempotency-Key', async () => {
    const name = hookName('flaky');
    const msg = jobMessage({ source: { key: 'cat.jpg' }, policy: BLOCK.name, callback: `${HOOKS}/hook/${name}?fail=2` });
    expect(await attempt(msg, 1)).toEqual({ ack: false, retryIn: 1 });
    const first = await record(msg.id);
    expect(first).toMatchObject({ status: 'done', delivery: { status: 'pending', attempts: 1, reason: expect.stringMatching(/503/) } });
    expect(await attempt(msg, 2)).toEqual({ ack: false, retryIn: 2 });
    expect(await attempt(msg, 3)).toEqual({ ack: true });
    const last = await record(msg.id);
    expect(last).toMatchObject({ status: 'done', delivery: { status: 'delivered', attempts: 3 } });
    // Not moderated again: the stored result is the first one, timings included.
    expect(last.result).toEqual(first.result);
    const hooks = await received(name);
    expect(hooks.map((h) => h.answered)).toEqual([503, 503, 200]);
    for (const h of hooks) {
      await expectSigned(h);
      expect(h.headers['idempotency-key']).toBe(msg.id);
      expect(h.body).toBe(hooks[0]!.body);
    }
  });

  it('a callback that always fails: retried with backoff, failed on the last attempt (the result stays), then dead-lettered without another send', async () => {
    const name = hookName('down');
    const msg = jobMessage({ source: { key: 'cat.jpg' }, policy: ALLOW.name, callback: `${HOOKS}/hook/${name}?status=500` });
    const delays: Array<number | undefined> = [];
    for (let n = 1; n <= 6; n++) delays.push((await attempt(msg, n)).retryIn);
    // The sixth (last) attempt is retried too, with no delay: past max_retries the queue moves
    // it to the dead-letter queue.
    expect(delays).toEqual([1, 2, 4, 8, 16, 0]);
    const r = await record(msg.id);
    expect(r).toMatchObject({ status: 'done', delivery: { status: 'failed', attempts: 6 } });
    expect(r.delivery.reason).toMatch(/answered 500 \(gave up after 6 attempts\)/);
    expect(r.deadLetteredAt).toBeUndefined();
    expect(await received(name)).toHaveLength(6);

    expect(await attempt(msg, 1, {}, DLQ)).toEqual({ ack: true });
    const dead = await record(msg.id);
    expect(dead).toMatchObject({ status: 'done', delivery: { status: 'failed', attempts: 6 }, deadLetteredAt: expect.any(String) });
    expect(await received(name)).toHaveLength(6);
  });

  it('a callback answering 408 or 429, timing out or unreachable is retried', async () => {
    const closed = `http://127.0.0.1:${new URL(HOOKS).port === '1' ? 2 : 1}/hook`;
    const cases: Array<[string, RegExp]> = [
      [`${HOOKS}/hook/${hookName('t408')}?status=408`, /answered 408/],
      [`${HOOKS}/hook/${hookName('t429')}?status=429`, /answered 429/],
      [`${HOOKS}/hook/${hookName('slow')}?slow=3000`, /timed out after 300 ms/],
      [closed, /unreachable/],
    ];
    for (const [callback, reason] of cases) {
      const msg = jobMessage({ source: { key: 'cat.jpg' }, policy: ALLOW.name, callback });
      expect(await attempt(msg, 2, { WEBHOOK_TIMEOUT_MS: '300' })).toEqual({ ack: false, retryIn: 2 });
      expect(await record(msg.id)).toMatchObject({ status: 'done', delivery: { status: 'pending', reason: expect.stringMatching(reason) } });
    }
  });

  it('a callback answering another 4xx or a redirect fails at once; the redirect is not followed', async () => {
    for (const query of ['status=404', 'redirect=1']) {
      const name = hookName('gone');
      const msg = jobMessage({ source: { key: 'cat.jpg' }, policy: ALLOW.name, callback: `${HOOKS}/hook/${name}?${query}` });
      expect(await attempt(msg, 1)).toEqual({ ack: true });
      expect(await record(msg.id)).toMatchObject({ status: 'done', delivery: { status: 'failed', attempts: 1 } });
      expect(await received(name)).toHaveLength(1);
      expect(await received(`${name}-redirected`)).toHaveLength(0);
    }
  });

  it('a poison object (not an image) and an object over MAX_BODY_BYTES fail at once, with a webhook saying why', async () => {
    const name = hookName('poison');
    const msg = jobMessage({ source: { key: 'poison.jpg' }, policy: ALLOW.name, callback: `${HOOKS}/hook/${name}`, metadata: { n: 1 } });
    expect(await attempt(msg, 1)).toEqual({ ack: true });
    const r = await record(msg.id);
    expect(r).toMatchObject({ status: 'failed', attempts: 1, error: { code: 415, type: 'unsupported_media_type' }, delivery: { status: 'delivered' } });
    expect(r).not.toHaveProperty('result');
    const hooks = await received(name);
    expect(hooks).toHaveLength(1);
    await expectSigned(hooks[0]!);
    expect(JSON.parse(hooks[0]!.body)).toMatchObject({ id: msg.id, status: 'failed', reason: r.reason, error: { type: 'unsupported_media_type' }, metadata: { n: 1 } });

    const big = jobMessage({ source: { key: 'cat.jpg' }, policy: ALLOW.name });
    expect(await attempt(big, 1, { MAX_BODY_BYTES: '1000' })).toEqual({ ack: true });
    expect(await record(big.id)).toMatchObject({ status: 'failed', error: { type: 'payload_too_large' } });

    const unknown = jobMessage({ source: { key: 'cat.jpg' }, policy: 'deleted-policy' });
    expect(await attempt(unknown, 1)).toEqual({ ack: true });
    expect(await record(unknown.id)).toMatchObject({ status: 'failed', error: { type: 'not_found' } });
  });

  it('an R2 read error is transient: retried, and failed with the reason after the last attempt', async () => {
    const broken = new Proxy(testEnv.UPLOADS, {
      get: (target, prop) => (prop === 'head' || prop === 'get' ? () => Promise.reject(new Error('R2 is down')) : Reflect.get(target, prop)),
    });
    const msg = jobMessage({ source: { key: 'cat.jpg' }, policy: ALLOW.name });
    expect(await attempt(msg, 1, { UPLOADS: broken })).toEqual({ ack: false, retryIn: 1 });
    expect(await record(msg.id)).toMatchObject({ status: 'queued', attempts: 1 });
    expect(await attempt(msg, 6, { UPLOADS: broken })).toEqual({ ack: true });
    const r = await record(msg.id);
    expect(r).toMatchObject({ status: 'failed', error: { code: 500, type: 'internal' } });
    // Internals stay in the log.
    expect(r.reason).not.toMatch(/R2 is down/);
  });

  it('the dead-letter queue ends an unfinished job as failed and sends its webhook once', async () => {
    const name = hookName('dlq');
    const msg = jobMessage({ source: { key: 'cat.jpg' }, policy: ALLOW.name, callback: `${HOOKS}/hook/${name}?status=500` });
    expect(await attempt(msg, 1, {}, DLQ)).toEqual({ ack: true });
    const r = await record(msg.id);
    expect(r).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^gave up after 6 attempts/), delivery: { status: 'failed', attempts: 1 } });
    const hooks = await received(name);
    expect(hooks).toHaveLength(1);
    expect(JSON.parse(hooks[0]!.body)).toMatchObject({ id: msg.id, status: 'failed' });

    // A job that finished before its message reached the dead-letter queue keeps its result.
    const done = jobMessage({ source: { key: 'cat.jpg' }, policy: ALLOW.name });
    await attempt(done, 1);
    await attempt(done, 1, {}, DLQ);
    expect(await record(done.id)).toMatchObject({ status: 'done' });
  });

  it('duplicate deliveries, one after the other and in one batch: one stored result, the same webhook with the same Idempotency-Key', async () => {
    const name = hookName('dup');
    const msg = jobMessage({ source: { key: 'cat.jpg' }, policy: BLOCK.name, callback: `${HOOKS}/hook/${name}` });
    const { ids, result } = await runBatch([{ body: msg }, { body: msg }]);
    expect([...(result.explicitAcks as string[])].sort()).toEqual([...ids].sort());
    const stored = await record(msg.id);
    expect(stored.status).toBe('done');
    expect(await attempt(msg, 1)).toEqual({ ack: true });
    // The third delivery did not moderate again.
    expect((await record(msg.id)).result).toEqual(stored.result);
    const hooks = await received(name);
    expect(hooks).toHaveLength(3);
    expect(new Set(hooks.map((h) => h.headers['idempotency-key']))).toEqual(new Set([msg.id]));
    expect(new Set(hooks.map((h) => h.body)).size).toBe(1);
    expect(JSON.parse(hooks[0]!.body).result).toEqual(stored.result);
  });

  it('notification ids are RFC 9562 UUIDv5 (its published example)', async () => {
    // RFC 9562, appendix A.4: the DNS namespace and "www.example.com".
    expect(await uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('messages that are neither jobs nor notifications are dropped', async () => {
    expect(await attempt('hello', 1)).toEqual({ ack: true });
    expect(await attempt({ type: 'other' }, 1)).toEqual({ ack: true });
  });
});

describe('job records', () => {
  const base = (id: string): JobRecord => ({
    id,
    status: 'running',
    source: { key: 'cat.jpg' },
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    attempts: 0,
    delivery: { status: 'none', attempts: 0 },
  });

  it('conditional writes: created only where none exists, no update lost to a concurrent one, a final outcome never replaced', async () => {
    const id = crypto.randomUUID();
    await updateJob(testEnv.MODELS, id, () => base(id));
    // R2's create-only put, as the store relies on it.
    expect(await testEnv.MODELS.put(jobKey(id), '{}', { onlyIf: { etagDoesNotMatch: '*' } })).toBeNull();
    await Promise.all(Array.from({ length: 5 }, () => updateJob(testEnv.MODELS, id, (r) => r && { ...r, attempts: r.attempts + 1 })));
    expect(await record(id)).toMatchObject({ status: 'running', attempts: 5 });
    await updateJob(testEnv.MODELS, id, (r) => r && { ...r, status: 'failed', reason: 'first', completedAt: 'x' });
    const kept = await updateJob(testEnv.MODELS, id, (r) => r && { ...r, status: 'done', reason: 'second' });
    expect(kept).toMatchObject({ status: 'failed', reason: 'first' });
    // Delivery state may change on a final record, its outcome may not.
    await updateJob(testEnv.MODELS, id, (r) => r && { ...r, status: 'done', reason: 'third', delivery: { status: 'delivered', attempts: 1 } }, { allowFinal: true });
    expect(await record(id)).toMatchObject({ status: 'failed', reason: 'first', delivery: { status: 'delivered', attempts: 1 } });
  });
});

describe('through the local queue', () => {
  it('a callback that fails twice then succeeds is delivered on the third attempt', async () => {
    const name = hookName('queue-flaky');
    const res = await postJob({ key: 'cat.jpg', policy: ALLOW.name, callback: `${HOOKS}/hook/${name}?fail=2` });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const r = await waitFor(id, settled);
    expect(r).toMatchObject({ status: 'done', delivery: { status: 'delivered', attempts: 3 } });
    const hooks = await received(name);
    expect(hooks.map((h) => h.answered)).toEqual([503, 503, 200]);
    expect(new Set(hooks.map((h) => h.body)).size).toBe(1);
  });

  it('a callback that always fails ends in the dead-letter queue (max_retries 5: 6 sends, ~31 s of backoff)', async () => {
    const name = hookName('queue-down');
    const res = await postJob({ key: 'cat.jpg', policy: ALLOW.name, callback: `${HOOKS}/hook/${name}?status=500` });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const r = await waitFor(id, (j) => j.deadLetteredAt !== undefined, 90_000);
    expect(r).toMatchObject({ status: 'done', delivery: { status: 'failed', attempts: 6 } });
    expect(r.result).toBeDefined();
    const hooks = await received(name);
    expect(hooks.map((h) => h.answered)).toEqual([500, 500, 500, 500, 500, 500]);
  }, 120_000);

  it('many jobs in a row: none lost', async () => {
    const N = 200;
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const res = await postJob({ key: 'cat.jpg', policy: ALLOW.name, model: 'resnet34v1', metadata: { i } });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    expect(new Set(ids).size).toBe(N);
    const records = [];
    for (const id of ids) records.push(await waitFor(id, final, 120_000));
    expect(records.map((r) => r.status)).toEqual(ids.map(() => 'done'));
    expect(records.map((r) => (r.metadata as { i: number }).i)).toEqual(ids.map((_, i) => i));
    expect(new Set(records.map((r) => r.result!.model.id))).toEqual(new Set(['resnet34v1']));
  }, 300_000);
});

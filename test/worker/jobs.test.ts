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

/**
 * Request ids and the per-request log line (src/middleware/request-log), and error causes
 * logged under the id (src/errors.ts), through the Worker's fetch handler.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { modelUnavailable } from '../../src/errors';
import { serverTimings } from '../../src/middleware/request-log';
import { rpcError } from '../../src/rpc';
import { call, fixture, form, seedModel } from './helpers';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let cat: Uint8Array;
beforeAll(async () => {
  await seedModel('resnet18v1');
  cat = await fixture('test/fixtures/photos/chelsea.jpg');
});

afterEach(() => vi.restoreAllMocks());

/** The JSON lines a call writes with console[method]. */
function capture(method: 'log' | 'error') {
  const lines: Array<Record<string, unknown>> = [];
  vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('{')) lines.push(JSON.parse(args[0]) as Record<string, unknown>);
  });
  return lines;
}

describe('X-Request-Id', () => {
  it('is made for a request without one, and logged with route, model, status, timings and bytes', async () => {
    const lines = capture('log');
    const body = form(cat);
    const res = await call('/predict', { method: 'POST', body });
    expect(res.status).toBe(200);
    const id = res.headers.get('X-Request-Id');
    expect(id).toMatch(UUID);
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatchObject({ id, method: 'POST', route: '/predict', path: '/predict', status: 200, model: 'resnet18v1', cache: 'BYPASS' });
    const timings = line.timings as Record<string, number>;
    for (const stage of ['decode', 'preprocess', 'inference', 'total', 'worker']) expect(timings[stage]).toBeGreaterThanOrEqual(0);
    expect(timings.worker).toBeGreaterThanOrEqual(timings.total!);
  });

  it("keeps the caller's id, and logs the route pattern, not the path", async () => {
    const lines = capture('log');
    const res = await call('/predict/resnet18v1', { method: 'POST', body: cat, headers: { 'X-Request-Id': 'upload-42=a_b', 'Content-Length': String(cat.length) } });
    expect(res.status).toBe(200);
    expect(res.headers.get('X-Request-Id')).toBe('upload-42=a_b');
    expect(lines[0]).toMatchObject({ id: 'upload-42=a_b', route: '/predict/:model', path: '/predict/resnet18v1', bytesIn: cat.length });
  });

  it('replaces an id that is not a sane token', async () => {
    for (const bad of ['has space', 'x'.repeat(256), 'a\\"b']) {
      const res = await call('/ping', { headers: { 'X-Request-Id': bad } });
      expect(res.headers.get('X-Request-Id')).toMatch(UUID);
    }
  });

  it('is on errors too: 404, 405, 401 and 400', async () => {
    const lines = capture('log');
    const missing = await call('/nowhere');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('X-Request-Id')).toMatch(UUID);
    const wrongMethod = await call('/predict');
    expect(wrongMethod.status).toBe(405);
    const unauthorized = await call('/models', {}, { API_KEY: 'sesame-0123456789' });
    expect(unauthorized.status).toBe(401);
    const bad = await call('/predict?topk=0', { method: 'POST', body: form(cat) });
    expect(bad.status).toBe(400);
    const answers = [missing, wrongMethod, unauthorized, bad];
    expect(lines.map((l) => [l.id, l.status])).toEqual(answers.map((r) => [r.headers.get('X-Request-Id'), r.status]));
    expect(lines[0]!.route).toBe('(none)');
  });
});

describe('a model Worker (MODEL_WORKERS)', () => {
  it('gets the request id, and its own answer carries it back', async () => {
    const seen: Array<string | null> = [];
    // Answers as a Fetcher does: a Response made elsewhere, without our id.
    const MODEL_A = {
      async fetch(input: RequestInfo | URL, init?: RequestInit) {
        seen.push(new Request(input, init).headers.get('X-Request-Id'));
        return Response.json({ model: 'resnet34v1' });
      },
    };
    const vars = { MODEL_WORKERS: 'resnet34v1=MODEL_A', MODEL_A } as unknown as Partial<Env>;
    const res = await call('/predict/resnet34v1', { method: 'POST', body: cat }, vars);
    expect(res.status).toBe(200);
    const id = res.headers.get('X-Request-Id');
    expect(id).toMatch(UUID);
    expect(seen).toEqual([id]);
  });

  it('failing: the 503 names it, and the cause is logged under the request id', async () => {
    const errors = capture('error');
    const MODEL_A = {
      fetch() {
        throw new Error('connection reset by the model Worker');
      },
    };
    const vars = { MODEL_WORKERS: 'resnet34v1=MODEL_A', MODEL_A } as unknown as Partial<Env>;
    const res = await call('/predict/resnet34v1', { method: 'POST', body: cat, headers: { 'X-Request-Id': 'trace-7' } }, vars);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { message: string };
    // The caller gets the message; the cause's own words are in the log only, under the id.
    expect(body.message).toMatch(/model resnet34v1: its Worker \(MODEL_A\) is unreachable/);
    expect(errors).toContainEqual(expect.objectContaining({ id: 'trace-7', level: 'error', type: 'model_unavailable', cause: 'Error: connection reset by the model Worker' }));
  });
});

describe('a hidden cause is logged once', () => {
  it('over HTTP: R2 failing is one line, under the request id, with R2\'s words', async () => {
    const calls: unknown[][] = [];
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void calls.push(args));
    const broken = { list: () => Promise.reject(new Error('R2 internal error (10001)')) } as unknown as R2Bucket;
    const res = await call('/models', { headers: { 'X-Request-Id': 'r2-down' } }, { MODELS: broken });
    expect(res.status).toBe(503);
    expect(calls).toHaveLength(1);
    expect(JSON.parse(String(calls[0]![0]))).toMatchObject({ id: 'r2-down', type: 'model_unavailable', cause: 'Error: R2 internal error (10001)' });
  });

  it('over RPC: the answer is the 503, the log has its cause', () => {
    const calls: unknown[][] = [];
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void calls.push(args));
    const cause = new Error('R2 internal error (10001)');
    expect(rpcError('moderate', modelUnavailable('the model list: reading from R2 failed; retry shortly', cause))).toEqual({
      code: 503,
      type: 'model_unavailable',
      message: 'the model list: reading from R2 failed; retry shortly',
    });
    expect(calls).toEqual([['RPC moderate: the model list: reading from R2 failed; retry shortly:', cause]]);
  });
});

describe('serverTimings', () => {
  it('reads name;dur entries, with or without desc, and skips the rest', () => {
    expect(serverTimings('cache;dur=0.1;desc="MISS", decode;dur=12.5, total;dur=40, junk, x;desc=y')).toEqual({ cache: 0.1, decode: 12.5, total: 40 });
    expect(serverTimings(null)).toEqual({});
  });
});

/**
 * The upload fuzz target's bodies (test/fuzz/targets/upload.ts) through the Worker's real fetch
 * handler, so that workerd's own Request.formData() parses them (the Node target runs undici's).
 * Every answer must be JSON: a 4xx `{ code, type, message }`, or what a valid upload gets. The
 * model named does not exist, so a valid upload ends in a 404 (or a 415/422 for its image)
 * before any model is loaded: the test is about the upload handling, and stays fast.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UPLOAD_CASES, uploadRequest } from '../fuzz/targets/upload';
import { call, type ErrorAnswer } from './helpers';

const SEED = 20261202;
const RUNS = 300;

describe('fuzz: multipart uploads through the Worker', () => {
  it(`${RUNS} generated bodies from seed ${SEED} all get a JSON 4xx`, async () => {
    const statuses: Record<number, number> = {};
    const problems: string[] = [];
    for (const c of fc.sample(UPLOAD_CASES, { seed: SEED, numRuns: RUNS })) {
      const { request, maxImages } = uploadRequest(c.bytes, 'http://edge.test/predict/no-such-model');
      const res = await call('/predict/no-such-model', { method: 'POST', headers: request.headers, body: await request.arrayBuffer() }, {
        MAX_IMAGES: String(maxImages),
      });
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      const text = await res.text();
      let body: ErrorAnswer | null = null;
      try {
        body = JSON.parse(text) as ErrorAnswer;
      } catch {
        problems.push(`${res.status} not JSON (${text.slice(0, 80)}): ${c.how}`);
        continue;
      }
      const fine = res.status >= 400 && res.status < 500 ? body.code === res.status && typeof body.message === 'string' : res.status === 200 || res.status === 503;
      if (!fine) problems.push(`${res.status} ${text.slice(0, 120)}: ${c.how}`);
    }
    expect(problems).toEqual([]);
    // Both kinds of answer were reached: refusals of the body, and bodies that got past it.
    expect(statuses[400]).toBeGreaterThan(0);
    expect((statuses[404] ?? 0) + (statuses[415] ?? 0) + (statuses[422] ?? 0)).toBeGreaterThan(0);
    console.log('fuzz-upload statuses:', JSON.stringify(statuses));
  }, 120_000);
});

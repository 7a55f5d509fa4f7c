/** The Worker's probabilities against onnxruntime-node on the same model and input (see global-setup.ts). */
import { beforeAll, describe, expect, it } from 'vitest';
import { call, fixture, form, seedModel, TEST_MODELS, type NativeAnswer } from './helpers';

interface Parity {
  model: string;
  images: string[];
  logits: number[][];
}
let parity: Parity;

beforeAll(async () => {
  await seedModel('resnet18v1/fp32');
  parity = JSON.parse(new TextDecoder().decode(await fixture(`${TEST_MODELS}/parity.json`))) as Parity;
});

function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const exp = logits.map((x) => Math.exp(x - max));
  const sum = exp.reduce((a, b) => a + b);
  return exp.map((e) => e / sum);
}

describe('parity with onnxruntime-node', () => {
  it('gives the same 1000 probabilities for each photo, in one batch (max abs difference < 1e-4)', async () => {
    const images = await Promise.all(parity.images.map((name) => fixture(`test/fixtures/photos/${name}`)));
    // The parity model is fp32: its heap passes what admission control lets a 128 MB isolate
    // have beside decodes, so the budget is lifted for this comparison.
    const res = await call(`/predict/${parity.model}?topk=1000`, { method: 'POST', body: form(...images) }, { MEMORY_BUDGET_MB: '100000' } as Partial<Env>);
    expect(res.status).toBe(200);
    const body = (await res.json()) as NativeAnswer;
    body.images.forEach((image, i) => {
      const expected = softmax(parity.logits[i]!);
      const got = new Array<number>(1000);
      for (const p of image.predictions) got[p.index] = p.probability;
      const diff = Math.max(...expected.map((e, k) => Math.abs(e - got[k]!)));
      expect(diff).toBeLessThan(1e-4);
      // The comparison means something only if the distribution is not flat.
      expect(Math.max(...expected)).toBeGreaterThan(10 / 1000);
    });
  });
});

import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createSession } from '../../src/onnx/session';

describe('onnx session in workerd', () => {
  it('runs', async () => {
    const res = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch('http://fixtures/models/out/smoke/model.onnx');
    const bytes = new Uint8Array(await res.arrayBuffer());
    const s = await createSession(bytes, { inputName: 'data', outputName: 'logits' });
    const t0 = Date.now(); const p0 = performance.now();
    const out = await s.run(new Float32Array(2 * 3 * 224 * 224).fill(1), [2, 3, 224, 224]);
    let x = 0; for (let i = 0; i < 5e7; i++) x += i;
    console.log('dt', Date.now() - t0, performance.now() - p0, x);
    expect(out.dims).toEqual([2, 1000]);
    expect(out.data[1]).toBeCloseTo(Math.sin(3) + Math.sin(4) + Math.sin(5), 4);
  });
});

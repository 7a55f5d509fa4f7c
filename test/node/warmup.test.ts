/** The warm-up network bundled into the Worker (models/src/warmup.ts). */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { decodeModel, getAttribute, graphOf, toNumber } from '../../models/src/onnx';
import { buildWarmupModel, WARMUP_PATH } from '../../models/src/warmup';

describe('warm-up network', () => {
  it('is what the build wrote, deterministically, small, with the kernels of the served ResNets', async () => {
    const model = await buildWarmupModel();
    // `npm test` builds it first; a different build here would mean a non-deterministic recipe.
    expect(Buffer.compare(model, await readFile(WARMUP_PATH))).toBe(0);
    expect(model.byteLength).toBeLessThan(1e6);
    const nodes = graphOf(decodeModel(model)).node;
    const ops = new Set(nodes.map((n) => n.opType));
    for (const op of ['QuantizeLinear', 'QLinearConv', 'QLinearAdd', 'MaxPool', 'DequantizeLinear', 'GlobalAveragePool', 'Gemm']) expect(ops).toContain(op);
    const kernels = new Set(nodes.filter((n) => n.opType === 'QLinearConv').map((n) => toNumber(getAttribute(n, 'kernel_shape')!.ints![0])));
    expect([...kernels].sort()).toEqual([1, 3, 7]);
  }, 60_000);

  it('runs on the 224x224 input the Worker gives it', async () => {
    const session = await ort.InferenceSession.create(await readFile(WARMUP_PATH), { intraOpNumThreads: 1 });
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', new Float32Array(3 * 224 * 224), [1, 3, 224, 224]) });
    expect(out[session.outputNames[0]!]!.dims).toEqual([1, 1000]);
    await session.release();
  });
});

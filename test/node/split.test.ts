/**
 * `models split`: cutting int8 models into stages for separate isolates. The stages must
 * compute exactly what the whole model does, hand over one tensor each, and carry what the
 * Worker needs (sha256, tensor specs) in a manifest the Worker accepts.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyModel } from '../../models/src/commands/verify';
import { decodeModel, graphOf } from '../../models/src/onnx';
import { chooseCuts, type Cut, findCuts, splitOne } from '../../models/src/split';
import { stageFile } from '../../src/models/manifest';
import { parseManifest } from '../../src/models/validate';
import { ensureTestModel } from '../models';

const work = await mkdtemp(join(tmpdir(), 'edge-resnet-split-'));
afterAll(() => rm(work, { recursive: true, force: true }));

/** A private copy of a test model, so that a test may split or corrupt it. */
async function copyOf(id: string): Promise<string> {
  const { dir } = await ensureTestModel(id, 'int8');
  const copy = join(work, `${id}-${Math.random().toString(36).slice(2)}`);
  await cp(dir, copy, { recursive: true });
  return copy;
}

describe('choosing cuts', () => {
  const cuts: Cut[] = [10, 20, 30, 40, 50, 60, 70, 80, 90].map((b, i) => ({ tensor: `t${i}`, position: i + 1, bytesBefore: b }));

  it('takes the cuts nearest to equal shares of the weights', () => {
    expect(chooseCuts(cuts, 100, 3).map((c) => c.bytesBefore)).toEqual([30, 70]);
    expect(chooseCuts(cuts, 100, 2).map((c) => c.bytesBefore)).toEqual([50]);
    expect(chooseCuts(cuts, 100, 1)).toEqual([]);
  });

  it('keeps the cuts in order and distinct even when the weights sit in one place', () => {
    const lopsided = cuts.map((c) => ({ ...c, bytesBefore: c.position < 9 ? 1 : 99 }));
    const chosen = chooseCuts(lopsided, 100, 4);
    expect(chosen.map((c) => c.position)).toEqual([...new Set(chosen.map((c) => c.position))].sort((a, b) => a - b));
    expect(chosen).toHaveLength(3);
  });

  it('refuses more stages than there are cut points', () => {
    expect(() => chooseCuts(cuts.slice(0, 2), 100, 4)).toThrow(/2 single-tensor cut points, too few for 4 stages/);
    expect(() => chooseCuts(cuts, 100, 0)).toThrow(/positive integer/);
  });
});

describe('finding cuts in a ResNet', () => {
  it('cuts only between residual blocks, where one tensor is live', async () => {
    const { dir } = await ensureTestModel('resnet101v1', 'int8');
    const model = decodeModel(new Uint8Array(await readFile(join(dir, 'model.onnx'))));
    const { cuts, totalBytes } = findCuts(model);
    const nodes = graphOf(model).node;
    // ResNet-101: 3 + 4 + 23 + 3 blocks; every block boundary is a cut, no point inside a block is.
    const blockOutputs = cuts.filter((c) => nodes[c.position - 1]!.opType === 'QLinearAdd');
    expect(blockOutputs).toHaveLength(3 + 4 + 23 + 3);
    for (const c of cuts) expect(nodes.slice(c.position).some((n) => n.input.includes(c.tensor))).toBe(true);
    // Residual branches are never cut: a block's input is read by two nodes, so it is not alone.
    const insideBlocks = cuts.filter((c) => /stage\d_relu\d+_fwd_quantized$/.test(c.tensor));
    expect(insideBlocks).toEqual([]);
    expect(cuts.at(-1)!.bytesBefore).toBeLessThan(totalBytes);
  });
});

describe('splitting', () => {
  it('v1 in three stages: uint8 hand-overs, exactly the whole model, a manifest the Worker accepts', async () => {
    const dir = await copyOf('resnet101v1');
    const manifest = await splitOne(dir, 3);
    expect(manifest.stages).toHaveLength(3);
    const [a, b, c] = manifest.stages!;
    expect(a!.input.name).toBe(manifest.input.name);
    expect(a!.output).toEqual(b!.input);
    expect(b!.output).toEqual(c!.input);
    expect(c!.output.name).toBe(manifest.output.name);
    expect(a!.output).toMatchObject({ type: 'uint8', shape: ['N', expect.any(Number), expect.any(Number), expect.any(Number)] });
    // Roughly even shares of the weights (what each isolate's heap mostly holds).
    const sizes = manifest.stages!.map((s) => s.bytes);
    expect(Math.max(...sizes) / Math.min(...sizes)).toBeLessThan(1.6);
    expect(manifest.notes?.split).toMatchObject({ stages: 3, maxAbsDiff: 0 });
    expect(parseManifest(manifest.id, JSON.stringify(manifest)).stages).toHaveLength(3);
    // verify re-checks the files' hashes and runs the chain against the whole model.
    expect(await verifyModel(dir)).toEqual([]);
  }, 120_000);

  it('v2 in two stages: the float residual stream is handed over', async () => {
    const dir = await copyOf('resnet50v2');
    const manifest = await splitOne(dir, 2);
    expect(manifest.stages![0]!.output.type).toBe('float32');
    expect(await verifyModel(dir)).toEqual([]);
  }, 120_000);

  it('verify catches a stage that was tampered with or does not chain', async () => {
    const dir = await copyOf('resnet101v1');
    await splitOne(dir, 3);
    const stage1 = join(dir, stageFile(1));
    const bytes = await readFile(stage1);
    bytes[bytes.length - 10]! ^= 0xff;
    await writeFile(stage1, bytes);
    expect(await verifyModel(dir)).toEqual([`${stageFile(1)} does not match the manifest`]);

    // Stages from two different splits: each file is intact, but they do not chain.
    const other = await copyOf('resnet101v1');
    await splitOne(other, 2);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    const two = JSON.parse(await readFile(join(other, 'manifest.json'), 'utf8'));
    manifest.stages[1] = two.stages[1];
    await cp(join(other, stageFile(1)), stage1);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    expect((await verifyModel(dir)).join('\n')).toMatch(/stage 2 reads .*, stage 1 gives/);
  }, 120_000);

  it('one stage means served whole again: the stage files and manifest entries go', async () => {
    const dir = await copyOf('resnet101v1');
    await splitOne(dir, 3);
    const whole = await splitOne(dir, 1);
    expect(whole.stages).toBeUndefined();
    expect(whole.notes?.split).toBeUndefined();
    expect([0, 1, 2].map((k) => existsSync(join(dir, stageFile(k))))).toEqual([false, false, false]);
    expect(await verifyModel(dir)).toEqual([]);
  }, 120_000);

  it('the Worker refuses manifests whose stages do not chain', () => {
    const base = { id: 'resnet101v1', weights: 'synthetic', precision: 'int8-qoperator', sha256: 'a'.repeat(64), bytes: 10, labels: 'imagenet-1k' };
    const spec = (name: string, type = 'uint8') => ({ name, type, shape: ['N', 8, 14, 14] });
    const manifest = {
      ...base,
      input: { name: 'data', shape: ['N', 3, 224, 224] },
      output: { name: 'logits', shape: ['N', 1000] },
      preprocess: { resizeShorter: 256, cropHeight: 224, cropWidth: 224, mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] },
      stages: [
        { sha256: 'b'.repeat(64), bytes: 5, input: { ...spec('data', 'float32'), shape: ['N', 3, 224, 224] }, output: spec('x') },
        { sha256: 'c'.repeat(64), bytes: 5, input: spec('x'), output: { name: 'logits', type: 'float32', shape: ['N', 1000] } },
      ],
    };
    expect(parseManifest('resnet101v1', JSON.stringify(manifest)).stages).toHaveLength(2);
    const broken = structuredClone(manifest);
    broken.stages[1]!.input.name = 'y';
    expect(() => parseManifest('resnet101v1', JSON.stringify(broken))).toThrow(/stage 1 reading y, not x/);
    const badType = structuredClone(manifest);
    badType.stages[0]!.output.type = 'int64';
    expect(() => parseManifest('resnet101v1', JSON.stringify(badType))).toThrow(/bad tensors for stage 0/);
    expect(() => parseManifest('resnet101v1', JSON.stringify({ ...manifest, stages: [manifest.stages[0]] }))).toThrow(/two or more/);
  });
});

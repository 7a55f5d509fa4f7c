/**
 * The accuracy evaluator end to end on a tiny synthetic ResNet: the fixture photos labeled with
 * the classes the model itself predicts (computed here independently, with the plain-TS
 * reference preprocessing) must score exactly 100% top-1, in both label layouts; shifted
 * labels must score 0%, so the check can fail.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateModel, formatEval, loadSynsets, parseLabelsFile } from '../../models/src/eval';
import { synthesizeModel } from '../../models/src/synth';
import { decodeImage } from '../../src/image';
import type { ImageNetClass } from '../../src/models/labels';
import type { ModelManifest } from '../../src/models/manifest';
import { topK } from '../../src/pipeline/postprocess';
import { preprocessReference } from '../../src/preprocess/reference';
import { modelDir, ROOT } from '../../models/src/paths';

const PHOTOS = ['chelsea.jpg', 'coffee.jpg', 'rocket.jpg', 'camera.png', 'chelsea.png'];
const photoPath = (name: string): string => join(ROOT, 'test/fixtures/photos', name);

let tmp: string;
let out: string;
let classes: ImageNetClass[];
/** Per photo, the fp32 model's classes best first (from the reference pipeline, not the evaluator's). */
const ranked = new Map<string, number[]>();

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'edge-resnet-eval-'));
  out = join(tmp, 'out');
  const { manifest } = await synthesizeModel('resnet18v1', { dir: modelDir(out, 'resnet18v1', 'fp32'), width: 1 / 16, seed: 7 });
  classes = await loadSynsets();

  const session = await ort.InferenceSession.create(join(modelDir(out, 'resnet18v1', 'fp32'), 'model.onnx'), { intraOpNumThreads: 1 });
  const spec = manifest.preprocess;
  for (const name of PHOTOS) {
    const image = decodeImage(new Uint8Array(await readFile(photoPath(name))), { maxPixels: 1e9 });
    const tensor = new Float32Array(3 * spec.cropHeight * spec.cropWidth);
    preprocessReference(image, spec, tensor, 0);
    const result = await session.run({ [manifest.input.name]: new ort.Tensor('float32', tensor, [1, 3, spec.cropHeight, spec.cropWidth]) });
    const logits = result[manifest.output.name]!.data as Float32Array;
    ranked.set(name, [...logits.keys()].sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, 5));
  }
  await session.release();
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const best = (name: string): number => ranked.get(name)![0]!;

/** `<dir>/<synset>/<photo>` for the given labels. */
async function synsetFolders(dir: string, label: (name: string) => number): Promise<string> {
  for (const name of PHOTOS) {
    const folder = join(dir, classes[label(name)]!.synset);
    await mkdir(folder, { recursive: true });
    await copyFile(photoPath(name), join(folder, name));
  }
  return dir;
}

/** The photos flat in `dir`, and a labels file beside them. */
async function flatFolder(dir: string, lines: string[]): Promise<{ images: string; labels: string }> {
  await mkdir(dir, { recursive: true });
  for (const name of PHOTOS) await copyFile(photoPath(name), join(dir, name));
  const labels = `${dir}.labels.txt`;
  await writeFile(labels, `${lines.join('\n')}\n`);
  return { images: dir, labels };
}

describe('evaluateModel', () => {
  it('scores 100% top-1 on synset folders labeled with the model’s own predictions', async () => {
    const images = await synsetFolders(join(tmp, 'synsets'), best);
    const progress: number[] = [];
    const r = await evaluateModel('resnet18v1', { images, out, onProgress: (done) => progress.push(done) });
    expect(r.labelSource).toBe('synset folders');
    expect(r.images).toBe(PHOTOS.length);
    expect(r.skipped).toEqual([]);
    expect(r.variants).toHaveLength(1);
    expect(r.variants[0]).toMatchObject({ variant: 'fp32', weights: 'synthetic', correct1: 5, correct5: 5, top1: 1, top5: 1 });
    expect(r.variants[0]!.published).toEqual({ catalogId: 'resnet18v1', top1: 69.93, top5: 89.29 });
    expect(r.agreement).toBeNull();
    expect(r.synthetic).toBe(true);
    expect(progress).toEqual([1, 2, 3, 4, 5]);
    // The evaluator's top-5 (wasm kernel) equals the reference pipeline's, class for class.
    for (const p of r.predictions) expect(p.top5.fp32).toEqual(ranked.get(p.name.split('/')[1]!));
  });

  it('scores 100% on a flat folder with a labels file (class indices and synsets)', async () => {
    const lines = PHOTOS.map((name, i) => `${name} ${i % 2 ? classes[best(name)]!.synset : best(name)}`);
    const { images, labels } = await flatFolder(join(tmp, 'flat'), ['# ground truth', ...lines, 'not-here.JPEG 5']);
    const r = await evaluateModel('resnet18v1', { images, labels, out });
    expect(r.labelSource).toBe('labels file');
    expect(r.images).toBe(5);
    expect(r.variants[0]).toMatchObject({ top1: 1, top5: 1 });
  });

  it('scores 0% top-1 with wrong labels, and top-5 sees the runner-up', async () => {
    const second = await flatFolder(
      join(tmp, 'second'),
      PHOTOS.map((name) => `${name} ${ranked.get(name)![1]}`),
    );
    const r1 = await evaluateModel('resnet18v1', { ...second, out });
    expect(r1.variants[0]).toMatchObject({ correct1: 0, correct5: 5 });

    const outside = await flatFolder(
      join(tmp, 'outside'),
      PHOTOS.map((name) => `${name} ${[...Array(1000).keys()].find((c) => !ranked.get(name)!.includes(c))}`),
    );
    const r2 = await evaluateModel('resnet18v1', { ...outside, out });
    expect(r2.variants[0]).toMatchObject({ correct1: 0, correct5: 0, top1: 0, top5: 0 });
  });

  it('runs an int8 variant side by side and reports the agreement', async () => {
    const outInt8 = join(tmp, 'out-int8');
    const fp32 = modelDir(out, 'resnet18v1', 'fp32');
    for (const variant of ['fp32', 'int8'] as const) {
      const dir = modelDir(outInt8, 'resnet18v1', variant);
      await mkdir(dir, { recursive: true });
      await copyFile(join(fp32, 'model.onnx'), join(dir, 'model.onnx'));
      const manifest = JSON.parse(await readFile(join(fp32, 'manifest.json'), 'utf8')) as ModelManifest;
      if (variant === 'int8') manifest.precision = 'int8-qdq';
      await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    }
    const images = await synsetFolders(join(tmp, 'synsets-int8'), best);
    const r = await evaluateModel('resnet18v1', { images, out: outInt8, limit: 3 });
    expect(r.images).toBe(3);
    expect(r.variants.map((v) => [v.variant, v.precision, v.top1])).toEqual([
      ['fp32', 'fp32', 1],
      ['int8', 'int8-qdq', 1],
    ]);
    expect(r.variants[1]!.published).toBeNull();
    expect(r.agreement).toEqual({ top1: 1, same: 3 });

    const table = formatEval(r);
    expect(table).toMatch(/^int8\s+int8-qdq\s+synthetic\s+3\s+100\.00%/m);
    expect(table).toContain('fp32 vs int8 top-1 agreement: 100.00% (3/3)');
    expect(table).toMatch(/synthetic weights.*meaningless/);
  });

  it('skips images the decoder refuses, outside the accuracy', async () => {
    const { images, labels } = await flatFolder(join(tmp, 'broken'), [
      ...PHOTOS.map((name) => `${name} ${best(name)}`),
      'broken.jpg 3',
    ]);
    await writeFile(join(images, 'broken.jpg'), Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2));
    const r = await evaluateModel('resnet18v1', { images, labels, out });
    expect(r.images).toBe(5);
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0]!.name).toBe('broken.jpg');
    expect(r.variants[0]!.top1).toBe(1);
    expect(formatEval(r)).toContain('skipped 1 image(s)');
  });

  it('refuses unusable folders and labels', async () => {
    const flat = join(tmp, 'flat-nolabels');
    await mkdir(flat, { recursive: true });
    await copyFile(photoPath('coffee.jpg'), join(flat, 'coffee.jpg'));
    await expect(evaluateModel('resnet18v1', { images: flat, out })).rejects.toThrow(/no class subfolders.*--labels/);

    await writeFile(join(tmp, 'partial.txt'), 'other.jpg 1\n');
    await expect(evaluateModel('resnet18v1', { images: flat, labels: join(tmp, 'partial.txt'), out })).rejects.toThrow(
      /no label for 1 image\(s\).*coffee\.jpg/,
    );

    await mkdir(join(tmp, 'bad-synset', 'n99999999'), { recursive: true });
    await expect(evaluateModel('resnet18v1', { images: join(tmp, 'bad-synset'), out })).rejects.toThrow(
      /n99999999.*not an ImageNet-1k synset/,
    );

    await expect(evaluateModel('resnet50v2', { images: join(tmp, 'synsets'), out })).rejects.toThrow(/no built model resnet50v2/);
  });
});

describe('labels and ranking', () => {
  it('parses ILSVRC-style label lines and rejects bad classes', () => {
    const bySynset = new Map([['n01440764', 0], ['n01443537', 1]]);
    expect([...parseLabelsFile('a.JPEG 65\r\nb.JPEG n01443537\n\n# c\n', 'f', bySynset, 1000)]).toEqual([
      ['a.JPEG', 65],
      ['b.JPEG', 1],
    ]);
    expect(() => parseLabelsFile('a.JPEG 1000\n', 'f', bySynset, 1000)).toThrow(/f:1: "1000" is neither/);
    expect(() => parseLabelsFile('x\ny.JPEG n0\n', 'f', bySynset, 1000)).toThrow(/f:1: expected/);
  });

  it("ranks with the pipeline's top k: best first, ties to the lower index", () => {
    const ranked = (logits: number[], k: number) => topK(Float32Array.from(logits), classes, k).map((p) => p.index);
    expect(ranked([1, 5, 3, 5, 0, 4], 3)).toEqual([1, 3, 5]);
    expect(ranked([2, 1], 5)).toEqual([0, 1]);
  });
});

/**
 * Decoding fidelity with teeth: our 224x224 crop (bench/fidelity.ts `ourCrop`, the Worker's decode +
 * resize) against Pillow's (committed golden crops, test/fixtures/fidelity, made by
 * `/usr/bin/python3 scripts/make-fidelity-corpus.py --fixtures`), and what the difference does
 * to an input-sensitive ResNet-18 (models/src/sensitive.ts: BN statistics measured on the test
 * photos) in fp32 onnxruntime-node.
 *
 * Targets, per image: mean |diff| <= 0.5 levels; 99.9 % of the 224*224*3 values within 8
 * levels; no class probability moves more than 0.02; top-1 unchanged where the reference's
 * top-1/top-2 margin exceeds 0.02.
 *
 * The reduced-scale JPEG cases (1/2, 1/4, 1/8: big JPEGs decoded in the DCT domain, then resized
 * with the full image's geometry) are in their own describe block. Before the geometry fix and
 * the new decoder (commit 847a66d) they failed by far: mean |diff| 0.9-5.7 levels, 99.9th
 * percentile 9-41 levels, probability changes up to 0.13.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { cropDiff, decodePathOf, FLIP_MARGIN, ourCrop, percentileOf, probDiff, shareWithin, toTensor, type FileFacts } from '../../bench/fidelity.js';
import { decodePlanned, planDecode } from '../../src/image/index.js';
import { IMAGENET_PREPROCESS as SPEC } from '../../src/models/manifest.js';
import { resizeCropU8 } from '../../src/preprocess/reference.js';
import { photoTensors } from '../../models/src/quantize/photos.js';
import { buildSensitiveResNetMeasured, probabilities, top2 } from '../../models/src/sensitive.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const PHOTOS = `${FIXTURES}photos/`;
/** Distinct scenes of test/fixtures/photos (the chelsea variants would weigh one cat five times). */
const CALIBRATION = ['astronaut.jpg', 'camera.png', 'chelsea.jpg', 'coffee.jpg', 'rocket.jpg'];
/** Width of the test's sensitive ResNet-18: a quarter of the channels builds in a few seconds. */
const WIDTH = 0.25;
/**
 * Gaussian smoothing of the stem's filters (models/src/sensitive.ts). Without it this narrow
 * net moved a class probability by up to 0.024 for random +-1-level noise on these fixtures
 * (measured 2026-12-02), above the 0.02 target itself: it could not tell an imperceptible
 * change from a failure. Smoothed (as a trained net's first layer is) its noise floor is 0.018,
 * and it still sees the old reduced-scale geometry bug (0.18, below).
 */
const STEM_BLUR = 1.5;

const MEAN_LEVELS = 0.5;
const TAIL_LEVELS = 8;
const TAIL_SHARE = 0.999;
const MAX_PROB_CHANGE = 0.02;

interface Case {
  file: string;
  golden: string;
  width: number;
  height: number;
  derived: string;
}
const index = JSON.parse(readFileSync(`${FIXTURES}fidelity/index.json`, 'utf8')) as { cases: Case[] };

interface Measured extends FileFacts {
  c: Case;
  /** The Worker's decode path for it (src/image planDecode): 'jpeg', 'jpeg@1/4', 'jpeg-progressive@1/2', 'png', ... */
  plan: string;
  mean: number;
  max: number;
  p999: number;
  within8: number;
  ref: Uint8Array;
  ours: Uint8Array;
}

const measured = await Promise.all(index.cases.map(async (c): Promise<Measured> => {
  const bytes = new Uint8Array(readFileSync(FIXTURES + c.file));
  const ref = new Uint8Array(readFileSync(`${FIXTURES}fidelity/${c.golden}`));
  const ours = await ourCrop(bytes);
  const d = cropDiff(ours, ref);
  const plan = planDecode(bytes, { maxPixels: 1e9, maxMemoryMB: 1024 }, { target: 256 }).path;
  return { ...decodePathOf(bytes), c, plan, mean: d.mean, max: d.max, p999: percentileOf(d.hist, 99.9), within8: shareWithin(d.hist, TAIL_LEVELS), ref, ours };
}));

const reduced = measured.filter((m) => m.plan.includes('@1/'));
const fullScale = measured.filter((m) => !reduced.includes(m));

let model: Uint8Array;
let buildMs = 0;
const probs = new Map<string, ReturnType<typeof probDiff>>();

beforeAll(async () => {
  const tensors = photoTensors(CALIBRATION.map((f) => PHOTOS + f)).map((p) => p.tensor);
  const built = await buildSensitiveResNetMeasured(tensors, { width: WIDTH, stemBlur: STEM_BLUR });
  model = built.bytes;
  buildMs = built.ms;
  const out = await probabilities(model, measured.flatMap((m) => [toTensor(m.ref), toTensor(m.ours)]));
  measured.forEach((m, i) => probs.set(m.c.file, probDiff(out[2 * i]!, out[2 * i + 1]!)));
});

const label = (m: Measured): string => `${m.c.file} (${m.plan}${m.subsampling ? `, ${m.subsampling}` : ''}, ${m.width}x${m.height})`;

function fidelityCases(cases: readonly Measured[]): void {
  for (const m of cases) {
    describe(label(m), () => {
      it(`crop: mean |diff| <= ${MEAN_LEVELS} levels`, () => {
        expect(m.mean, `mean |diff| ${m.mean.toFixed(3)}, max ${m.max}`).toBeLessThanOrEqual(MEAN_LEVELS);
      });
      it(`crop: ${TAIL_SHARE * 100}% of values within ${TAIL_LEVELS} levels`, () => {
        expect(m.within8, `${(100 * m.within8).toFixed(3)}% within ${TAIL_LEVELS}; 99.9th percentile ${m.p999}, max ${m.max}`).toBeGreaterThanOrEqual(TAIL_SHARE);
      });
      it(`model: no class probability moves more than ${MAX_PROB_CHANGE}`, () => {
        const p = probs.get(m.c.file)!;
        expect(p.maxChange, `max change ${p.maxChange.toFixed(4)}`).toBeLessThanOrEqual(MAX_PROB_CHANGE);
      });
      it(`model: top-1 unchanged where the reference margin exceeds ${FLIP_MARGIN}`, () => {
        const p = probs.get(m.c.file)!;
        if (p.refMargin > FLIP_MARGIN) expect(p.ourTop1, `reference top-1 ${p.refTop1} (margin ${p.refMargin.toFixed(3)})`).toBe(p.refTop1);
      });
    });
  }
}

describe('fixtures', () => {
  // 1/8 needs a shorter side of 3 x 8 x 256 = 6144 px, too large a file to commit; it is
  // checked against the exact full decode at a smaller resize target in decode-plan.test.ts.
  it('reach every decode scale used at 256 with 16 MP (full, 1/2, 1/4), progressive at full and reduced scale, and PNG', () => {
    const paths = new Set(measured.map((m) => m.plan));
    for (const p of ['jpeg', 'jpeg@1/2', 'jpeg@1/4', 'jpeg-progressive', 'jpeg-progressive@1/2', 'png']) expect(paths, p).toContain(p);
  });
});

// With jpeg-js at full scale (commit 847a66d) the photos/*.jpg missed: mean |diff| 0.61-0.67
// levels, class probabilities moved by up to 0.037. Our decoder is bit-exact: 0.
describe('full-scale decodes (JPEG baseline 1/1, progressive, PNG)', () => {
  fidelityCases(fullScale);
});

describe('reduced-scale JPEG decodes (1/2, 1/4, 1/8)', () => {
  fidelityCases(reduced);
});

describe('the input-sensitive model', () => {
  it('has a noise floor under the target: random +-1-level noise on the reference crop moves no probability more than 0.02', async () => {
    const noisy = measured.map((m) => m.ref.map((v, i) => Math.max(0, Math.min(255, v + (((i * 2654435761) >>> 0) % 3) - 1))));
    const out = await probabilities(model, [...measured.map((m) => toTensor(m.ref)), ...noisy.map(toTensor)]);
    const worst = Math.max(...measured.map((_, i) => probDiff(out[i]!, out[measured.length + i]!).maxChange));
    expect(worst).toBeLessThanOrEqual(MAX_PROB_CHANGE);
  });

  it('has teeth: the old reduced-scale geometry (the reduced decode resized as if it were the whole image) fails the target', async () => {
    // An odd size at 1/2 (2048x1365: the reduced image is 683 rows, the box 682.5), where the
    // old pipeline shifted and rescaled the whole crop.
    const m = measured.find((x) => x.c.file === 'fidelity/coffee-2048x1365-q88-420-progressive.jpg')!;
    const bytes = new Uint8Array(readFileSync(FIXTURES + m.c.file));
    const plan = planDecode(bytes, { maxPixels: 1e9, maxMemoryMB: 1024 }, { target: 256, collect: true });
    expect(plan.reduction).toBeDefined();
    const old = resizeCropU8(await decodePlanned(bytes, plan, { maxPixels: 1e9 }), SPEC);
    const [ref, bad] = await probabilities(model, [toTensor(m.ref), toTensor(old)]);
    expect(probDiff(ref!, bad!).maxChange).toBeGreaterThan(MAX_PROB_CHANGE);
    expect(cropDiff(old, m.ref).mean).toBeGreaterThan(MEAN_LEVELS);
  });

  it(`builds quickly at width ${WIDTH}`, () => {
    // Measured ~3-8 s on the 2-core build machine; a generous bound against a regression.
    expect(buildMs).toBeLessThan(60_000);
  });

  it('is deterministic: same photos and options, same bytes', async () => {
    const tensors = photoTensors(['chelsea.jpg', 'rocket.jpg'].map((f) => PHOTOS + f)).map((p) => p.tensor);
    const a = await buildSensitiveResNetMeasured(tensors, { width: 0.125, views: 2 });
    const b = await buildSensitiveResNetMeasured(tensors, { width: 0.125, views: 2 });
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    const c = await buildSensitiveResNetMeasured(tensors.slice(0, 1), { width: 0.125, views: 2 });
    expect(Buffer.from(a.bytes).equals(Buffer.from(c.bytes))).toBe(false);
  });

  it('depends on the image: different photos, different top classes, unsaturated probabilities', async () => {
    const scenes = measured.filter((m) => m.c.file.startsWith('photos/') && CALIBRATION.some((f) => m.c.file.endsWith(`/${f}`)));
    expect(scenes).toHaveLength(CALIBRATION.length);
    const p = await probabilities(model, scenes.map((m) => toTensor(m.ref)));
    const tops = p.map((x) => top2(x));
    expect(new Set(tops.map((t) => t.top1)).size, `top-1 classes ${tops.map((t) => t.top1).join(', ')}`).toBeGreaterThanOrEqual(4);
    for (const [i, t] of tops.entries()) {
      const top = p[i]![t.top1]!;
      // Not near-uniform (1/1000) and not saturated.
      expect(top, scenes[i]!.c.file).toBeGreaterThan(0.02);
      expect(top, scenes[i]!.c.file).toBeLessThan(0.9999);
    }
    // Neighbouring inputs give neighbouring outputs: a 1-level change moves probabilities a little, not at all or wildly.
    const x = toTensor(scenes[0]!.ref);
    const nudged = toTensor(scenes[0]!.ref.map((v) => (v < 255 ? v + 1 : v)));
    const [a, b] = await probabilities(model, [x, nudged]);
    const change = probDiff(a!, b!).maxChange;
    expect(change).toBeGreaterThan(1e-5);
    expect(change).toBeLessThan(0.2);
  });
});

/**
 * The synthetic ResNet generator (models/src/resnet.ts): architecture faithful to the zoo files
 * (parameter counts and byte sizes), valid ONNX that onnxruntime runs, deterministic bytes, and
 * weights whose logits on real photos are finite, unsaturated and photo-dependent.
 *
 * Full-size models are built only for ResNet-18 (v1, v2); the other eight are counted without
 * generating weights and run at width 1/8. RESNET_FULL=1 also runs all ten at full size.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import jpeg from 'jpeg-js';
import { decode as decodePng } from 'fast-png';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { IMAGENET_PREPROCESS } from '../../src/models/manifest';
import {
  DataType,
  decodeModel,
  encodeModel,
  getAttribute,
  graphOf,
  onnx,
  type IValueInfoProto,
  tensorToFloat32,
  toNumber,
  type ModelProto,
} from '../../models/src/onnx';
import {
  buildResNet,
  buildResNetModel,
  countResNetParameters,
  parseResNetId,
  RESNET_IDS,
  type ResNetOptions,
} from '../../models/src/resnet';
import { synthesizeModel } from '../../models/src/synth';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const catalog = JSON.parse(readFileSync(path.join(ROOT, 'models/catalog.json'), 'utf8')) as {
  models: { id: string; bytes: number }[];
};
const zooBytes = (id: string): number => {
  const m = catalog.models.find((x) => x.id === id);
  if (!m) throw new Error(`${id} not in catalog`);
  return m.bytes;
};
const FULL = process.env.RESNET_FULL === '1';

async function run(bytes: Uint8Array, input: Float32Array, batch: number, extraOutputs: string[] = []) {
  const session = await ort.InferenceSession.create(bytes);
  const feeds = { data: new ort.Tensor('float32', input, [batch, 3, 224, 224]) };
  return session.run(feeds, [...session.outputNames, ...extraOutputs]);
}

function randomInput(batch: number, seed: number): Float32Array {
  // Not the generator's Rng on purpose: an independent LCG, values ~ U(-2, 2).
  let s = seed >>> 0;
  const a = new Float32Array(batch * 3 * 224 * 224);
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296) * 4 - 2;
  }
  return a;
}

function checkLogits(out: ort.Tensor, batch: number): Float32Array {
  expect(out.dims).toEqual([batch, 1000]);
  const d = out.data as Float32Array;
  expect(d.every(Number.isFinite)).toBe(true);
  for (let b = 1; b < batch; b++) {
    let diff = 0;
    for (let k = 0; k < 1000; k++) diff = Math.max(diff, Math.abs(d[b * 1000 + k]! - d[k]!));
    expect(diff).toBeGreaterThan(1e-3);
  }
  return d;
}

/** Shorter side to 256 (bilinear), centre 224 crop, ImageNet normalisation: close enough to the zoo's. */
function loadPhoto(file: string): Float32Array {
  const buf = readFileSync(file);
  let width: number;
  let height: number;
  let px: Uint8Array | Uint16Array | Uint8ClampedArray;
  let ch: number;
  if (file.endsWith('.png')) {
    const im = decodePng(buf);
    ({ width, height, channels: ch } = im);
    px = im.data as Uint8Array;
  } else {
    const im = jpeg.decode(buf, { useTArray: true });
    ({ width, height } = im);
    px = im.data;
    ch = 4;
  }
  const { resizeShorter, cropWidth: S, mean, std } = IMAGENET_PREPROCESS;
  const scale = resizeShorter / Math.min(width, height);
  const ox = (Math.round(width * scale) - S) / 2;
  const oy = (Math.round(height * scale) - S) / 2;
  const out = new Float32Array(3 * S * S);
  const at = (x: number, y: number, c: number): number =>
    px[(Math.min(height - 1, Math.max(0, y)) * width + Math.min(width - 1, Math.max(0, x))) * ch + (ch >= 3 ? c : 0)]!;
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const sx = (x + ox + 0.5) / scale - 0.5;
      const sy = (y + oy + 0.5) / scale - 0.5;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      for (let c = 0; c < 3; c++) {
        const v =
          (at(x0, y0, c) * (1 - fx) + at(x0 + 1, y0, c) * fx) * (1 - fy) +
          (at(x0, y0 + 1, c) * (1 - fx) + at(x0 + 1, y0 + 1, c) * fx) * fy;
        out[c * S * S + y * S + x] = (v / 255 - mean[c]!) / std[c]!;
      }
    }
  }
  return out;
}

const PHOTO_DIR = path.join(ROOT, 'test/fixtures/photos');
// An explicit list: the folder also holds variants of one photo (EXIF orientation fixtures),
// which rightly share a class and would defeat the photo-dependence check.
const PHOTOS = ['camera.png', 'chelsea.jpg', 'coffee.jpg', 'rocket.jpg'];
const photoFiles = (): string[] =>
  PHOTOS.map((f) => path.join(PHOTO_DIR, f)).filter((f) => existsSync(f));

function softmaxTop1(logits: Float32Array, b: number): { cls: number; p: number } {
  const l = logits.subarray(b * 1000, (b + 1) * 1000);
  let cls = 0;
  for (let k = 1; k < 1000; k++) if (l[k]! > l[cls]!) cls = k;
  let z = 0;
  for (let k = 0; k < 1000; k++) z += Math.exp(l[k]! - l[cls]!);
  return { cls, p: 1 / z };
}

const nodesOf = (m: ModelProto) => graphOf(m).node;

describe('architecture matches the zoo files', () => {
  it.each(RESNET_IDS)('%s: parameter bytes within 1%% of the zoo file', (id) => {
    const params = countResNetParameters(parseResNetId(id));
    const rel = (params * 4 - zooBytes(id)) / zooBytes(id);
    expect(Math.abs(rel)).toBeLessThan(0.01);
    // Graph overhead only ever adds bytes: the floats alone must not exceed the zoo file.
    expect(params * 4).toBeLessThan(zooBytes(id));
  });

  it('ResNet-50 v1 parameter count includes the biases of the bottleneck 1x1 convs', () => {
    // torchvision's ResNet-50 has 25,557,032 trainable parameters; add BN running stats
    // (2 x 26,560 channels) and Gluon's 1x1 conv biases (18,880) for the zoo's count.
    expect(countResNetParameters({ version: 'v1', depth: 50 })).toBe(25_557_032 + 2 * 26_560 + 18_880);
  });

  it('width scales channels', () => {
    const full = countResNetParameters({ version: 'v2', depth: 50 });
    const quarter = countResNetParameters({ version: 'v2', depth: 50, width: 0.25 });
    expect(quarter).toBeLessThan(full / 8);
  });

  it('BottleneckV1 strides its first 1x1 conv; BottleneckV2 its 3x3 conv', () => {
    for (const version of ['v1', 'v2'] as const) {
      const m = buildResNetModel({ version, depth: 50, width: 1 / 16 }).model;
      const strided = nodesOf(m).filter(
        (n) => n.opType === 'Conv' && toNumber(getAttribute(n, 'strides')?.ints?.[0]) === 2 && n.name?.includes('stage'),
      );
      const kernels = strided.map((n) => toNumber(getAttribute(n, 'kernel_shape')?.ints?.[0]));
      // 3 strided stages: the downsample 1x1 plus the body conv carrying the stride.
      expect(kernels).toEqual(version === 'v1' ? [1, 1, 1, 1, 1, 1] : [1, 3, 1, 3, 1, 3]);
    }
  });
});

describe.each(['resnet18v1', 'resnet18v2'] as const)('%s at full size', (id) => {
  const t0 = performance.now();
  const built = buildResNet({ ...parseResNetId(id), seed: 0 });
  const buildMs = performance.now() - t0;
  const model = decodeModel(built.bytes);

  it('serialized size is within 1% of the zoo file, and quick to build', () => {
    expect(Math.abs(built.bytes.length - zooBytes(id)) / zooBytes(id)).toBeLessThan(0.01);
    expect(buildMs).toBeLessThan(20_000);
  });

  it('is ONNX opset 13 with a symbolic batch, zoo-like names and raw_data initializers', () => {
    expect(toNumber(model.irVersion)).toBe(7);
    expect(model.opsetImport.map((o) => [o.domain ?? '', toNumber(o.version)])).toEqual([['', 13]]);
    const g = graphOf(model);
    const dims = (vi: IValueInfoProto) =>
      vi.type?.tensorType?.shape?.dim?.map((d) => d.dimParam || toNumber(d.dimValue));
    expect(g.input.map((i) => i.name)).toEqual(['data']);
    expect(dims(g.input[0]!)).toEqual(['N', 3, 224, 224]);
    expect(g.output.map((o) => o.name)).toEqual([built.outputName]);
    expect(built.outputName).toBe(id.endsWith('v1') ? 'resnetv10_dense0_fwd' : 'resnetv20_dense0_fwd');
    expect(dims(g.output[0]!)).toEqual(['N', 1000]);
    const total = g.initializer.reduce((a, t) => a + t.dims.reduce<number>((x, d) => x * toNumber(d), 1), 0);
    expect(total).toBe(built.parameters);
    for (const t of g.initializer) {
      expect(t.dataType).toBe(DataType.FLOAT);
      expect(t.rawData.length).toBeGreaterThan(0);
    }
    const inits = new Set(g.initializer.map((t) => t.name));
    const bns = g.node.filter((n) => n.opType === 'BatchNormalization');
    expect(bns.length).toBe(id.endsWith('v1') ? 20 : 19);
    for (const bn of bns) expect(bn.input.slice(1).every((i) => inits.has(i))).toBe(true);
    expect(g.node.filter((n) => n.opType === 'Conv').length).toBe(id.endsWith('v1') ? 20 : 20);
    expect(g.node.map((n) => n.opType)).toContain('Gemm');
  });

  it('V2 starts with a BatchNorm without scale or centre (gamma 1, beta 0)', () => {
    const g = graphOf(model);
    const first = g.node[0]!;
    if (id.endsWith('v1')) {
      expect(first.opType).toBe('Conv');
      return;
    }
    expect(first.opType).toBe('BatchNormalization');
    expect(first.input[0]).toBe('data');
    const t = (name: string) => tensorToFloat32(g.initializer.find((x) => x.name === name)!);
    expect(t(first.input[1]!).every((v) => v === 1)).toBe(true);
    expect(t(first.input[2]!).every((v) => v === 0)).toBe(true);
  });

  it('weights have no outliers', () => {
    for (const t of graphOf(model).initializer.filter((x) => x.name.endsWith('_weight'))) {
      const w = tensorToFloat32(t);
      let s = 0;
      let max = 0;
      for (const v of w) {
        s += v * v;
        max = Math.max(max, Math.abs(v));
      }
      expect(max / Math.sqrt(s / w.length)).toBeLessThan(4);
    }
  });

  it('onnxruntime gives finite, distinct logits for random inputs', async () => {
    const out = await run(built.bytes, randomInput(2, 1), 2);
    checkLogits(out[built.outputName]!, 2);
  });

  it('real photos get unsaturated, photo-dependent top-1 classes', async () => {
    const files = photoFiles();
    expect(files.length).toBeGreaterThanOrEqual(3);
    const input = new Float32Array(files.length * 3 * 224 * 224);
    files.forEach((f, i) => input.set(loadPhoto(f), i * 3 * 224 * 224));
    const out = await run(built.bytes, input, files.length);
    const logits = checkLogits(out[built.outputName]!, files.length);
    const top = files.map((_, b) => softmaxTop1(logits, b));
    for (const t of top) {
      expect(t.p).toBeGreaterThan(0.005);
      expect(t.p).toBeLessThan(0.95);
    }
    expect(new Set(top.map((t) => t.cls)).size).toBeGreaterThanOrEqual(files.length - 1);
  });
});

describe('every model runs in onnxruntime', () => {
  const width = FULL ? 1 : 1 / 8;
  it.each(RESNET_IDS)(`%s (width ${width}): batch of 2 gives [2, 1000] finite, input-dependent logits`, async (id) => {
    const built = buildResNet({ ...parseResNetId(id), width, seed: 3 });
    const out = await run(built.bytes, randomInput(2, 42), 2);
    checkLogits(out[built.outputName]!, 2);
  });

  it('a fixed batch size is honoured', async () => {
    const built = buildResNet({ version: 'v2', depth: 18, width: 1 / 8, batch: 3 });
    const g = graphOf(decodeModel(built.bytes));
    expect(toNumber(g.input[0]!.type!.tensorType!.shape!.dim![0]!.dimValue)).toBe(3);
    const out = await run(built.bytes, randomInput(3, 5), 3);
    checkLogits(out[built.outputName]!, 3);
  });
});

describe('determinism', () => {
  const opts: ResNetOptions = { version: 'v1', depth: 50, width: 1 / 8 };
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

  it('same seed gives byte-identical files, another seed different weights', () => {
    const a = buildResNet({ ...opts, seed: 11 }).bytes;
    const b = buildResNet({ ...opts, seed: 11 }).bytes;
    const c = buildResNet({ ...opts, seed: 12 }).bytes;
    expect(sha(a)).toBe(sha(b));
    expect(c.length).toBe(a.length);
    expect(sha(c)).not.toBe(sha(a));
  });

  it('decode -> encode round-trips byte for byte', () => {
    const a = buildResNet({ ...opts, seed: 1 }).bytes;
    expect(sha(encodeModel(decodeModel(a)))).toBe(sha(a));
  });
});

describe('independent check of the stem', () => {
  it('conv 7x7/2 + BatchNorm + ReLU computed by hand matches onnxruntime', async () => {
    const { model, outputName } = buildResNetModel({ version: 'v1', depth: 18, width: 1 / 16, seed: 5 });
    const g = graphOf(model);
    const stem = 'resnetv10_relu0_fwd';
    g.output.push(onnx.ValueInfoProto.create({ name: stem, type: { tensorType: { elemType: DataType.FLOAT } } }));
    const input = randomInput(1, 9);
    const out = await run(encodeModel(model), input, 1);
    expect(out[outputName]!.dims).toEqual([1, 1000]);
    const t = (name: string) => tensorToFloat32(g.initializer.find((x) => x.name === name)!);
    const w = t('resnetv10_conv0_weight');
    const [gamma, beta, mean, variance] = ['gamma', 'beta', 'running_mean', 'running_var'].map((s) =>
      t(`resnetv10_batchnorm0_${s}`),
    );
    const relu = out[stem]!;
    const C = gamma!.length;
    expect(relu.dims).toEqual([1, C, 112, 112]);
    const got = relu.data as Float32Array;
    let checked = 0;
    for (const [oy, ox] of [[0, 0], [5, 77], [111, 111], [60, 3]] as const) {
      for (let o = 0; o < C; o++) {
        let acc = 0;
        for (let c = 0; c < 3; c++) {
          for (let ky = 0; ky < 7; ky++) {
            for (let kx = 0; kx < 7; kx++) {
              const y = oy * 2 - 3 + ky;
              const x = ox * 2 - 3 + kx;
              if (y < 0 || y >= 224 || x < 0 || x >= 224) continue;
              acc += w[((o * 3 + c) * 7 + ky) * 7 + kx]! * input[c * 224 * 224 + y * 224 + x]!;
            }
          }
        }
        const bn = ((acc - mean![o]!) / Math.sqrt(variance![o]! + 1e-5)) * gamma![o]! + beta![o]!;
        expect(got[o * 112 * 112 + oy * 112 + ox]!).toBeCloseTo(Math.max(0, bn), 3);
        checked++;
      }
    }
    expect(checked).toBe(4 * C);
  });
});

describe('synth CLI core', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'synth-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes model.onnx and a manifest that describes it', async () => {
    const r = await synthesizeModel('resnet34v2', { dir, seed: 4, width: 1 / 16 });
    const bytes = readFileSync(r.modelPath);
    const manifest = JSON.parse(readFileSync(r.manifestPath, 'utf8')) as typeof r.manifest;
    expect(manifest).toEqual(r.manifest);
    expect(manifest.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(manifest.bytes).toBe(bytes.length);
    expect(manifest).toMatchObject({
      id: 'resnet34v2',
      family: 'resnet',
      version: 'v2',
      depth: 34,
      precision: 'fp32',
      weights: 'synthetic',
      labels: 'imagenet-1k',
      input: { name: 'data', shape: ['N', 3, 224, 224] },
      output: { name: 'resnetv20_dense0_fwd', shape: ['N', 1000] },
      preprocess: IMAGENET_PREPROCESS,
      source: 'synthetic: models/src/resnet.ts seed=4 width=0.0625',
    });
    const out = await run(bytes, randomInput(2, 8), 2);
    checkLogits(out[manifest.output.name]!, 2);
  });
});

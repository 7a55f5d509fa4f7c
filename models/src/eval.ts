/**
 * Top-1 / top-5 accuracy of a built model over an ImageNet-validation-style folder
 * (`npm run models -- eval --model <id> --images <dir>`), through exactly the Worker's image
 * path: src/image's decoder and the wasm preprocessing kernel with the manifest's spec, then the
 * pipeline's own batching and top-K (src/pipeline). Only the session differs (onnxruntime-node
 * instead of onnxruntime-web, behind the same Session interface), and the parity tests keep
 * those two in step. The fp32 and int8 variants run side by side on the same tensors.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { register } from 'node:module';
import { extname, join, relative } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { DecodeLimits } from '../../src/image';
import { runBatch } from '../../src/pipeline/batch';
import { topK } from '../../src/pipeline/postprocess';
import { planFor, prepareInput } from '../../src/pipeline/prepare';
import type { ImageNetClass } from '../../src/models/labels';
import type { ModelManifest, PreprocessSpec } from '../../src/models/manifest';
import type { Session } from '../../src/onnx/session';
import type { Tensor } from '../../src/onnx/tensor';
import type { PreprocessKernel } from '../../wasm/preprocess/index';
import { ZOO_CATALOG, type Catalog, type CatalogEntry } from './fetch';
import { loadKernel } from './kernel';
import { DEFAULT_OUT, modelDir, readManifest, ROOT, type Variant } from './paths';

/** Validation images can be large; the Worker's pixel limit is about uploads, not accuracy. */
const LIMITS: DecodeLimits = { maxPixels: 1e9 };
const IMAGE_EXTENSIONS = new Set(['.jpeg', '.jpg', '.png']);
const TOP_K = 5;
const SYNSET_FILE = join(ROOT, 'src/models/imagenet-synset.txt');

// ---------------------------------------------------------------------------------------------
// Labels

// src/models/labels.ts imports the synset list as a wrangler Text module. Node has no loader
// for .txt, so importing parseSynsets from it under tsx would fail at link time; this hook
// gives .txt files the same meaning wrangler does (vitest's loader already handles them).
const TEXT_MODULE_HOOKS = `
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && url.endsWith('.txt')) {
    const text = await readFile(fileURLToPath(url), 'utf8');
    return { format: 'module', source: 'export default ' + JSON.stringify(text) + ';', shortCircuit: true };
  }
  return nextLoad(url, context);
}`;
let textModulesRegistered = false;

/** The 1000 classes in output order, from src/models/imagenet-synset.txt. */
export async function loadSynsets(): Promise<ImageNetClass[]> {
  if (!textModulesRegistered) {
    register(`data:text/javascript,${encodeURIComponent(TEXT_MODULE_HOOKS)}`);
    textModulesRegistered = true;
  }
  const { parseSynsets } = await import('../../src/models/labels');
  return parseSynsets(await readFile(SYNSET_FILE, 'utf8'));
}

export interface LabeledImage {
  /** Absolute path. */
  path: string;
  /** Path relative to the images folder, for messages and per-image results. */
  name: string;
  /** Class index, 0..999 in the models' output order. */
  label: number;
}

export type LabelSource = 'synset folders' | 'labels file';

const isImage = (name: string): boolean => IMAGE_EXTENSIONS.has(extname(name).toLowerCase());
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The labeled images of `dir`: class subfolders named by synset (`<dir>/n01440764/*.JPEG`), or,
 * with `labelsFile`, the images directly in `dir` labeled by lines `<filename> <class index>`
 * (or `<filename> <synset>`). A labels file may list more images than the folder has (the
 * full validation set's list beside a subset); an image without a label is an error.
 *
 * Ordered so that a prefix is a fair sample for --limit: round robin over classes for
 * subfolders, file name order for a flat folder (ILSVRC validation files are shuffled).
 */
export async function loadLabeledImages(
  dir: string,
  labelsFile: string | undefined,
  classes: readonly ImageNetClass[],
): Promise<{ images: LabeledImage[]; source: LabelSource }> {
  const bySynset = new Map(classes.map((c) => [c.synset, c.index]));
  const entries = await readdir(dir, { withFileTypes: true });

  if (labelsFile !== undefined) {
    const labels = parseLabelsFile(await readFile(labelsFile, 'utf8'), labelsFile, bySynset, classes.length);
    const names = entries.filter((e) => e.isFile() && isImage(e.name)).map((e) => e.name).sort(byName);
    const unlabeled = names.filter((n) => !labels.has(n));
    if (unlabeled.length) {
      throw new Error(`${labelsFile} has no label for ${unlabeled.length} image(s) in ${dir}, e.g. ${unlabeled.slice(0, 3).join(', ')}`);
    }
    return { images: names.map((name) => ({ path: join(dir, name), name, label: labels.get(name)! })), source: 'labels file' };
  }

  const folders = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort(byName);
  if (folders.length === 0) {
    throw new Error(`${dir} has no class subfolders (n01440764/, ...); for a flat folder pass --labels <file>`);
  }
  const perClass: LabeledImage[][] = [];
  for (const synset of folders) {
    const label = bySynset.get(synset);
    if (label === undefined) throw new Error(`${join(dir, synset)}: "${synset}" is not an ImageNet-1k synset`);
    const files = (await readdir(join(dir, synset), { withFileTypes: true }))
      .filter((e) => e.isFile() && isImage(e.name))
      .map((e) => e.name)
      .sort(byName);
    perClass.push(files.map((f) => ({ path: join(dir, synset, f), name: relative(dir, join(dir, synset, f)), label })));
  }
  const total = perClass.reduce((a, c) => a + c.length, 0);
  const images: LabeledImage[] = [];
  for (let i = 0; images.length < total; i++) {
    for (const list of perClass) if (list[i]) images.push(list[i]!);
  }
  return { images, source: 'synset folders' };
}

/** `<filename> <class index | synset>` per line; blank lines and `#` comments are skipped. */
export function parseLabelsFile(
  text: string,
  file: string,
  bySynset: ReadonlyMap<string, number>,
  classCount: number,
): Map<string, number> {
  const labels = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^(.+?)[\s,]+(\S+)$/.exec(line);
    const where = `${file}:${i + 1}`;
    if (!m) throw new Error(`${where}: expected "<filename> <class index or synset>", got "${line}"`);
    const [, name, cls] = m as unknown as [string, string, string];
    const label = /^\d+$/.test(cls) ? Number(cls) : bySynset.get(cls);
    if (label === undefined || label >= classCount) {
      throw new Error(`${where}: "${cls}" is neither a class index 0..${classCount - 1} nor a synset`);
    }
    labels.set(name, label);
  });
  return labels;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

export interface EvalOptions {
  images: string;
  labels?: string;
  out?: string;
  /** Evaluate only the first N images (see loadLabeledImages for the order). */
  limit?: number;
  /** Called after every image, evaluated or skipped. */
  onProgress?: (done: number, total: number) => void;
  catalog?: Catalog;
}

export interface PublishedAccuracy {
  /** The catalog entry the numbers are from. */
  catalogId: string;
  top1: number | null;
  top5: number | null;
}

export interface VariantEval {
  variant: Variant;
  precision: ModelManifest['precision'];
  weights: ModelManifest['weights'];
  source: string;
  correct1: number;
  correct5: number;
  /** Fractions of the evaluated images, 0..1. */
  top1: number;
  top5: number;
  /** The zoo table's numbers for this file (percent), when it is a zoo file or the fp32 of a zoo model. */
  published: PublishedAccuracy | null;
}

export interface ImagePrediction {
  name: string;
  label: number;
  /** Class indices, best first, per variant. */
  top5: Partial<Record<Variant, number[]>>;
}

export interface EvalResult {
  id: string;
  imagesDir: string;
  labelSource: LabelSource;
  /** Images evaluated (skipped ones excluded). */
  images: number;
  /** Images the Worker's decoder refuses, with its reason; not counted in the accuracy. */
  skipped: Array<{ name: string; reason: string }>;
  variants: VariantEval[];
  /** Share of images on which fp32 and int8 agree on the top-1 class; null with one variant. */
  agreement: { top1: number; same: number } | null;
  /** Some variant has synthetic weights, which makes accuracy against real labels meaningless. */
  synthetic: boolean;
  predictions: ImagePrediction[];
  seconds: number;
}

interface Loaded {
  variant: Variant;
  manifest: ModelManifest;
  session: Session;
  correct1: number;
  correct5: number;
}

/** Accuracy of every built variant of `id` (fp32, int8) over the labeled images. */
export async function evaluateModel(id: string, opts: EvalOptions): Promise<EvalResult> {
  const started = performance.now();
  const out = opts.out ?? DEFAULT_OUT;
  const classes = await loadSynsets();
  const { images: all, source } = await loadLabeledImages(opts.images, opts.labels, classes);
  const images = opts.limit !== undefined ? all.slice(0, opts.limit) : all;
  if (images.length === 0) throw new Error(`no images (.jpeg, .jpg, .png) found in ${opts.images}`);

  const kernel = loadKernel();
  const loaded: Loaded[] = [];
  try {
    for (const variant of ['fp32', 'int8'] as const) {
      const dir = modelDir(out, id, variant);
      if (!existsSync(join(dir, 'manifest.json'))) continue;
      const manifest = await readManifest(dir);
      const session = await nodeSession(join(dir, 'model.onnx'), manifest);
      loaded.push({ variant, manifest, session, correct1: 0, correct5: 0 });
    }
    if (loaded.length === 0) throw new Error(`no built model ${id} in ${out} (run synth, fetch or quantize first)`);

    const skipped: EvalResult['skipped'] = [];
    const predictions: ImagePrediction[] = [];
    let same = 0;
    for (const [i, image] of images.entries()) {
      const top5 = await classifyImage(image, loaded, kernel, classes).catch((err: unknown) => {
        skipped.push({ name: image.name, reason: err instanceof Error ? err.message : String(err) });
        return undefined;
      });
      if (top5) {
        for (const l of loaded) {
          const best = top5[l.variant]!;
          if (best[0] === image.label) l.correct1++;
          if (best.includes(image.label)) l.correct5++;
        }
        if (top5.fp32 && top5.int8 && top5.fp32[0] === top5.int8[0]) same++;
        predictions.push({ name: image.name, label: image.label, top5 });
      }
      opts.onProgress?.(i + 1, images.length);
    }

    const n = predictions.length;
    const catalog = opts.catalog ?? ZOO_CATALOG;
    return {
      id,
      imagesDir: opts.images,
      labelSource: source,
      images: n,
      skipped,
      variants: loaded.map((l) => ({
        variant: l.variant,
        precision: l.manifest.precision,
        weights: l.manifest.weights,
        source: l.manifest.source,
        correct1: l.correct1,
        correct5: l.correct5,
        top1: n ? l.correct1 / n : 0,
        top5: n ? l.correct5 / n : 0,
        published: publishedFor(l.variant, l.manifest, catalog),
      })),
      agreement: loaded.length > 1 ? { top1: n ? same / n : 0, same } : null,
      synthetic: loaded.some((l) => l.manifest.weights === 'synthetic'),
      predictions,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Promise.all(loaded.map((l) => l.session.release()));
  }
}

/** The catalog file the model is (its source URL), or for fp32 the zoo model of the same id. */
function publishedFor(variant: Variant, manifest: ModelManifest, catalog: Catalog): PublishedAccuracy | null {
  const entry: CatalogEntry | undefined =
    catalog.models.find((m) => m.url === manifest.source) ??
    (variant === 'fp32' ? catalog.models.find((m) => m.id === manifest.id) : undefined);
  return entry ? { catalogId: entry.id, top1: entry.top1, top5: entry.top5 } : null;
}

/** Decode once, preprocess once per distinct spec, run every variant. */
async function classifyImage(
  image: LabeledImage,
  loaded: Loaded[],
  kernel: PreprocessKernel,
  classes: readonly ImageNetClass[],
): Promise<Partial<Record<Variant, number[]>>> {
  const bytes = new Uint8Array(await readFile(image.path));
  const tensors = new Map<string, Float32Array>();
  const top5: Partial<Record<Variant, number[]>> = {};
  for (const l of loaded) {
    const spec: PreprocessSpec = l.manifest.preprocess;
    const key = JSON.stringify(spec);
    let tensor = tensors.get(key);
    if (!tensor) {
      tensor = new Float32Array(3 * spec.cropHeight * spec.cropWidth);
      // The Worker's own path: the decode plan for this spec (reduced scale for big JPEGs), streamed into the kernel.
      await prepareInput(bytes, planFor(bytes, spec, LIMITS), spec, LIMITS, kernel, tensor, 0);
      tensors.set(key, tensor);
    }
    // The Worker's own batching (a fixed-batch model gets the image in a zero-padded batch) and ranking.
    const logits = await runBatch(l.session, l.manifest, tensor, 1);
    top5[l.variant] = topK(logits, classes, TOP_K).map((p) => p.index);
  }
  return top5;
}

/**
 * An onnxruntime-node session behind the Worker's Session interface (src/onnx/session.ts), so
 * the pipeline's batching runs on it unchanged. One thread: the figures are about accuracy.
 */
async function nodeSession(file: string, manifest: ModelManifest): Promise<Session> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const { input, output } = manifest;
  return {
    async run(tensor: Tensor): Promise<Tensor> {
      const result = await session.run({ [input.name]: new ort.Tensor(tensor.type, tensor.data, tensor.dims) });
      const logits = result[output.name];
      if (!logits) throw new Error(`model has no output "${output.name}"`);
      if (logits.type !== 'float32') throw new Error(`model output is ${logits.type}, expected float32 logits`);
      return { type: 'float32', data: logits.data as Float32Array, dims: logits.dims };
    },
    release: () => session.release(),
  };
}

// ---------------------------------------------------------------------------------------------
// Report

const pct = (x: number | null | undefined): string => (x == null ? '-' : `${(x * 100).toFixed(2)}%`);
const zooPct = (x: number | null | undefined): string => (x == null ? '-' : `${x.toFixed(2)}%`);

/** The result as the command prints it. */
export function formatEval(r: EvalResult): string {
  const rows = [
    ['variant', 'precision', 'weights', 'images', 'top-1', 'top-5', 'zoo top-1', 'zoo top-5'],
    ...r.variants.map((v) => [
      v.variant,
      v.precision,
      v.weights,
      String(r.images),
      pct(v.top1),
      pct(v.top5),
      zooPct(v.published?.top1),
      zooPct(v.published?.top5),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const lines = [
    `${r.id} on ${r.images} image(s) from ${r.imagesDir} (${r.labelSource}), ${r.seconds.toFixed(1)} s`,
    '',
    ...rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()),
  ];
  if (r.agreement) lines.push('', `fp32 vs int8 top-1 agreement: ${pct(r.agreement.top1)} (${r.agreement.same}/${r.images})`);
  const zoo = r.variants.filter((v) => v.published).map((v) => `${v.variant}: ${v.published!.catalogId}`);
  if (zoo.length) lines.push(`zoo numbers: models/catalog.json (ILSVRC2012 validation, 50,000 images) for ${zoo.join(', ')}`);
  if (r.skipped.length) {
    lines.push(`skipped ${r.skipped.length} image(s) the Worker's decoder refuses, e.g. ${r.skipped[0]!.name}: ${r.skipped[0]!.reason}`);
  }
  if (r.synthetic) {
    lines.push(
      '',
      'NOTE: synthetic weights (' +
        r.variants.filter((v) => v.weights === 'synthetic').map((v) => v.variant).join(', ') +
        '): accuracy against real labels is meaningless (chance is 0.1% top-1);',
      '      it only exercises the pipeline. Run `npm run models -- fetch <id>` for the zoo weights.',
    );
  }
  return lines.join('\n');
}

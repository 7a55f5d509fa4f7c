/**
 * Decoding fidelity: how far our 224x224 8-bit crop is from the reference crop, and how much that
 * moves an input-sensitive network's output, per decode path.
 *
 *   /usr/bin/python3 scripts/make-fidelity-corpus.py          # the default image set (bench/tmp/fidelity-corpus)
 *   npx tsx bench/fidelity.ts [--images <dir>...] [--out bench/fidelity.md] [--calib <dir>...] [--width 1]
 *
 * Reference crop: Pillow's full decode `ImageOps.exif_transpose(Image.open(f)).convert('RGB')`
 * (scripts/pillow-decode.py --raw), then resizeCropU8 (src/preprocess/reference.ts: bit-exact with
 * Pillow's resize(BILINEAR) + torchvision's CenterCrop geometry). Ours: `ourCrop`, the Worker's
 * decode + resize as of today; switch it to the new pipeline call in that one place.
 *
 * Model: the input-sensitive ResNet-18 v1 (models/src/sensitive.ts: BN statistics measured on the
 * --calib photos), fp32 in onnxruntime-node; cached in bench/tmp/ by calibration files and options.
 *
 * Writes <out> (markdown: the table for the README) and <out>.json (every image's numbers).
 */
import '../models/src/node-wasm';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { buildSensitiveResNetMeasured, probabilities, top2 } from '../models/src/sensitive';
import { photoTensors } from '../models/src/quantize/photos';
import { decodePlanned, jpegScaleFor, planDecode } from '../src/image/index';
import { IMAGENET_PREPROCESS, type PreprocessSpec } from '../src/models/manifest';
import { normalizeU8, resizeCropU8 } from '../src/preprocess/reference';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
/** A path as the report shows it: relative to the repo when inside it, else as given. */
const shown = (p: string): string => (relative(ROOT, p).startsWith('..') ? p : relative(ROOT, p) || '.');
export const SPEC: PreprocessSpec = IMAGENET_PREPROCESS;
/** Fidelity, not admission: no pixel or memory limit gets in the way of measuring a decode. */
const LIMITS = { maxPixels: 100_000_000, maxMemoryMB: 8192 };

// ---------------------------------------------------------------------------------------------
// The two crops.

/**
 * Our 224x224 HWC RGB crop of an upload, as the Worker computes it (src/pipeline/prepare.ts):
 * the decode plan for the model's spec (big JPEGs decode at 1/2, 1/4 or 1/8), then the resize
 * with the full image's geometry + centre crop. Collected rather than streamed and resized by
 * the TypeScript reference: both are bit-exact with the Worker's streaming wasm path
 * (test/node/decode-plan.test.ts, test/node/preprocess.test.ts).
 */
export async function ourCrop(bytes: Uint8Array): Promise<Uint8Array> {
  const plan = planDecode(bytes, LIMITS, { target: SPEC.resizeShorter, collect: true });
  return resizeCropU8(await decodePlanned(bytes, plan, LIMITS), SPEC, plan.reduction);
}

export type Reference = { crop: Uint8Array; width: number; height: number } | { error: string };

/**
 * Reference crops of `files` (by path): Pillow's full upright RGB decode through
 * scripts/pillow-decode.py, resized by resizeCropU8. Decodes in chunks of files with distinct
 * names, so at most a few full-size decodes are on disk at once.
 */
export function referenceCrops(files: readonly string[], chunk = 6): Map<string, Reference> {
  const out = new Map<string, Reference>();
  const pending = [...files];
  const tmp = mkdtempSync(join(ROOT, 'bench/tmp/pillow-'));
  try {
    while (pending.length > 0) {
      // pillow-decode.py names each raw file by the input's name without extension.
      const stems = new Set<string>();
      const batch: string[] = [];
      for (let i = 0; i < pending.length && batch.length < chunk; ) {
        const stem = basename(pending[i]!, extname(pending[i]!));
        if (stems.has(stem)) {
          i++;
          continue;
        }
        stems.add(stem);
        batch.push(...pending.splice(i, 1));
      }
      const lines = execFileSync('/usr/bin/python3', [join(ROOT, 'scripts/pillow-decode.py'), '--raw', tmp, ...batch], {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { file: string; width?: number; height?: number; error?: string });
      batch.forEach((path, i) => {
        const r = lines[i]!;
        if (r.error !== undefined || r.width === undefined || r.height === undefined) {
          out.set(path, { error: r.error ?? 'no answer' });
          return;
        }
        const raw = join(tmp, `${basename(path, extname(path))}.rgb`);
        const data = new Uint8Array(readFileSync(raw));
        rmSync(raw);
        out.set(path, { crop: resizeCropU8({ width: r.width, height: r.height, data }, SPEC), width: r.width, height: r.height });
      });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decode paths.

export const PATHS = [
  ['jpeg-1', 'JPEG baseline, full scale'],
  ['jpeg-2', 'JPEG baseline, 1/2 scale'],
  ['jpeg-4', 'JPEG baseline, 1/4 scale'],
  ['jpeg-8', 'JPEG baseline, 1/8 scale'],
  ['jpeg-progressive', 'JPEG progressive'],
  ['png', 'PNG'],
  ['webp-lossy', 'WebP lossy'],
  ['webp-lossless', 'WebP lossless'],
  ['gif', 'GIF'],
  ['other', 'other (unrecognised by magic bytes, or a rare JPEG process)'],
] as const;
export type PathId = (typeof PATHS)[number][0];

export interface FileFacts {
  path: PathId;
  /** Stored size from the header (before EXIF orientation). */
  width?: number;
  height?: number;
  /** JPEG: '4:2:0', '4:2:2', '4:4:4', 'gray', 'cmyk', or the H/V factors. */
  subsampling?: string;
  scale?: number;
}

/** Header facts of a JPEG: SOF type, size, components' sampling factors. */
function jpegFacts(b: Uint8Array): { sof: number; width: number; height: number; factors: [number, number][] } | undefined {
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return undefined;
    const m = b[p + 1]!;
    if (m === 0xff) {
      p++;
      continue;
    }
    if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      p += 2;
      continue;
    }
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      const height = (b[p + 5]! << 8) | b[p + 6]!;
      const width = (b[p + 7]! << 8) | b[p + 8]!;
      const n = b[p + 9]!;
      const factors: [number, number][] = [];
      for (let i = 0; i < n; i++) {
        const hv = b[p + 11 + i * 3]!;
        factors.push([hv >> 4, hv & 15]);
      }
      return { sof: m, width, height, factors };
    }
    if (m === 0xda) return undefined;
    p += 2 + len;
  }
  return undefined;
}

function subsamplingOf(factors: [number, number][]): string {
  if (factors.length === 1) return 'gray';
  if (factors.length === 4) return 'cmyk';
  const [y, cb, cr] = factors as [[number, number], [number, number], [number, number]];
  if (cb[0] !== cr[0] || cb[1] !== cr[1]) return factors.map((f) => `${f[0]}x${f[1]}`).join(',');
  const h = y[0] / cb[0];
  const v = y[1] / cb[1];
  if (h === 1 && v === 1) return '4:4:4';
  if (h === 2 && v === 1) return '4:2:2';
  if (h === 2 && v === 2) return '4:2:0';
  if (h === 1 && v === 2) return '4:4:0';
  return factors.map((f) => `${f[0]}x${f[1]}`).join(',');
}

/**
 * The decode path an image takes, from its bytes. `scaleFor` picks the JPEG scale from the
 * stored size the way src/image/index.ts does (default: its jpegScaleFor with the model's
 * shorter side); pass another to classify for a different decoder.
 */
export function decodePathOf(
  bytes: Uint8Array,
  scaleFor: (width: number, height: number) => number = (w, h) => jpegScaleFor(w, h, SPEC.resizeShorter),
): FileFacts {
  const b = bytes;
  const ascii = (at: number, s: string): boolean => [...s].every((c, i) => b[at + i] === c.charCodeAt(0));
  if (b[0] === 0xff && b[1] === 0xd8) {
    const f = jpegFacts(b);
    if (!f) return { path: 'other' };
    const facts = { width: f.width, height: f.height, subsampling: subsamplingOf(f.factors) };
    // SOF2 (progressive Huffman); SOF0/SOF1 baseline/extended sequential. Others are rare.
    if (f.sof === 0xc2 || f.sof === 0xc6 || f.sof === 0xca || f.sof === 0xce) return { path: 'jpeg-progressive', ...facts };
    if (f.sof !== 0xc0 && f.sof !== 0xc1) return { path: 'other', ...facts };
    const scale = scaleFor(f.width, f.height);
    return { path: `jpeg-${scale}` as PathId, scale, ...facts };
  }
  if (b[0] === 0x89 && ascii(1, 'PNG')) {
    return { path: 'png', width: (b[16]! << 24) | (b[17]! << 16) | (b[18]! << 8) | b[19]!, height: (b[20]! << 24) | (b[21]! << 16) | (b[22]! << 8) | b[23]! };
  }
  if (ascii(0, 'GIF8')) return { path: 'gif', width: b[6]! | (b[7]! << 8), height: b[8]! | (b[9]! << 8) };
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) {
    // VP8 = lossy, VP8L = lossless; VP8X (extended) says which in a later chunk.
    for (let p = 12; p + 8 <= b.length; ) {
      const size = b[p + 4]! | (b[p + 5]! << 8) | (b[p + 6]! << 16) | (b[p + 7]! << 24);
      if (ascii(p, 'VP8L')) return { path: 'webp-lossless' };
      if (ascii(p, 'VP8 ')) return { path: 'webp-lossy' };
      p += 8 + size + (size & 1);
    }
    return { path: 'other' };
  }
  return { path: 'other' };
}

// ---------------------------------------------------------------------------------------------
// Measures.

export interface CropDiff {
  mean: number;
  max: number;
  /** Count of |diff| = 0..255 over all values. */
  hist: Float64Array;
}

export function cropDiff(a: Uint8Array, b: Uint8Array): CropDiff {
  if (a.length !== b.length) throw new Error(`crops differ in size: ${a.length} vs ${b.length}`);
  const hist = new Float64Array(256);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    hist[d]!++;
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max, hist };
}

/** Nearest-rank percentile (0..100) of a |diff| histogram. */
export function percentileOf(hist: Float64Array, p: number): number {
  let total = 0;
  for (const c of hist) total += c;
  const rank = Math.ceil((p / 100) * total);
  let acc = 0;
  for (let d = 0; d < hist.length; d++) {
    acc += hist[d]!;
    if (acc >= rank) return d;
  }
  return hist.length - 1;
}

/** Share of values with |diff| <= d. */
export function shareWithin(hist: Float64Array, d: number): number {
  let total = 0;
  let within = 0;
  hist.forEach((c, i) => {
    total += c;
    if (i <= d) within += c;
  });
  return total > 0 ? within / total : 1;
}

export function toTensor(crop: Uint8Array): Float32Array {
  const t = new Float32Array(3 * SPEC.cropHeight * SPEC.cropWidth);
  normalizeU8(crop, SPEC.cropHeight, SPEC.cropWidth, SPEC, t, 0);
  return t;
}

export interface ProbDiff {
  /** Largest |p_ours - p_ref| over classes. */
  maxChange: number;
  refTop1: number;
  ourTop1: number;
  /** Reference top-1 minus top-2 probability. */
  refMargin: number;
}

export function probDiff(ref: Float32Array, ours: Float32Array): ProbDiff {
  let maxChange = 0;
  for (let k = 0; k < ref.length; k++) maxChange = Math.max(maxChange, Math.abs(ref[k]! - ours[k]!));
  const r = top2(ref);
  return { maxChange, refTop1: r.top1, ourTop1: top2(ours).top1, refMargin: r.margin };
}

/** Top-1 flips count only where the reference is this sure (top-1 minus top-2 probability). */
export const FLIP_MARGIN = 0.02;

export interface ImageResult extends FileFacts {
  file: string;
  error?: string;
  mean?: number;
  max?: number;
  p999?: number;
  prob?: ProbDiff;
}

export interface PathSummary {
  path: PathId;
  label: string;
  images: number;
  failed: number;
  mean?: number;
  max?: number;
  p999?: number;
  maxProbChange?: number;
  flips?: number;
  /** Images whose reference margin exceeds FLIP_MARGIN. */
  eligible?: number;
}

export function summarize(results: readonly ImageResult[], hists: ReadonlyMap<string, Float64Array>): PathSummary[] {
  return PATHS.map(([path, label]) => {
    const rs = results.filter((r) => r.path === path);
    const ok = rs.filter((r) => r.error === undefined);
    const s: PathSummary = { path, label, images: rs.length, failed: rs.length - ok.length };
    if (ok.length === 0) return s;
    const hist = new Float64Array(256);
    for (const r of ok) hists.get(r.file)!.forEach((c, i) => (hist[i]! += c));
    let n = 0;
    let sum = 0;
    hist.forEach((c, d) => {
      n += c;
      sum += c * d;
    });
    const withProb = ok.filter((r) => r.prob);
    const eligible = withProb.filter((r) => r.prob!.refMargin > FLIP_MARGIN);
    return {
      ...s,
      mean: sum / n,
      max: Math.max(...ok.map((r) => r.max!)),
      p999: percentileOf(hist, 99.9),
      ...(withProb.length > 0
        ? {
            maxProbChange: Math.max(...withProb.map((r) => r.prob!.maxChange)),
            eligible: eligible.length,
            flips: eligible.filter((r) => r.prob!.refTop1 !== r.prob!.ourTop1).length,
          }
        : {}),
    };
  }).filter((s) => s.images > 0 || s.path !== 'other');
}

export function markdownTable(summary: readonly PathSummary[]): string {
  const f = (v: number | undefined, d = 2): string => (v === undefined ? '' : v.toFixed(d));
  const rows = summary.map((s) => {
    if (s.images === 0) return `| ${s.label} | 0 | | | | | |`;
    if (s.images === s.failed) return `| ${s.label} | ${s.images} | not supported yet | | | | |`;
    const failed = s.failed > 0 ? ` (${s.failed} failed to decode)` : '';
    const flips = s.eligible === undefined ? '' : `${s.flips} / ${s.eligible}`;
    return `| ${s.label} | ${s.images - s.failed}${failed} | ${f(s.mean, 3)} | ${s.max} | ${s.p999} | ${f(s.maxProbChange, 4)} | ${flips} |`;
  });
  return [
    '| decode path | images | mean abs diff (levels) | max abs diff | 99.9th pct abs diff | max change of any class probability | top-1 flips / images with margin > 0.02 |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The run.

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|mpo)$/i;

function listImages(dirs: readonly string[]): string[] {
  return dirs.flatMap((d) =>
    readdirSync(d)
      .filter((f) => IMAGE_EXT.test(f))
      .sort()
      .map((f) => join(d, f)),
  );
}

/** The sensitive model for these calibration photos, built once and cached in bench/tmp. */
async function sensitiveModel(calibDirs: readonly string[], width: number, stemBlur: number, log: (s: string) => void): Promise<{ bytes: Uint8Array; note: string }> {
  const files = calibDirs.flatMap((d) =>
    readdirSync(d)
      .filter((f) => /\.(jpe?g|png)$/i.test(f))
      .sort()
      .map((f) => join(d, f)),
  );
  const key = createHash('sha256')
    .update(JSON.stringify({ files: files.map((f) => [basename(f), statSync(f).size]), width, stemBlur, v: 1 }))
    .digest('hex')
    .slice(0, 16);
  const cache = join(ROOT, `bench/tmp/fidelity-model-${key}.onnx`);
  const note = `input-sensitive ResNet-18 v1 (models/src/sensitive.ts, width ${width}, stem blur ${stemBlur}, seed 0), BN statistics measured on ${files.length} photos from ${calibDirs.map(shown).join(', ')}`;
  if (existsSync(cache)) {
    log(`model: ${relative(ROOT, cache)} (cached)`);
    return { bytes: new Uint8Array(readFileSync(cache)), note };
  }
  log(`model: decoding ${files.length} calibration photos...`);
  const tensors = photoTensors(files).map((p) => p.tensor);
  log('model: measuring BN statistics...');
  const built = await buildSensitiveResNetMeasured(tensors, { width, ...(stemBlur > 0 ? { stemBlur } : {}) });
  log(`model: built in ${(built.ms / 1000).toFixed(0)} s, ${built.views} views, logit scale ${built.logitScale.toFixed(3)}`);
  mkdirSync(join(ROOT, 'bench/tmp'), { recursive: true });
  writeFileSync(cache, built.bytes);
  return { bytes: built.bytes, note };
}

export interface FidelityRun {
  results: ImageResult[];
  summary: PathSummary[];
}

export async function runFidelity(
  files: readonly string[],
  model: Uint8Array | undefined,
  o: { log?: (s: string) => void; scaleFor?: (w: number, h: number) => number } = {},
): Promise<FidelityRun> {
  const log = o.log ?? (() => {});
  const results: ImageResult[] = [];
  const hists = new Map<string, Float64Array>();
  const pairs: { i: number; ref: Uint8Array; ours: Uint8Array }[] = [];
  const refs = referenceCrops(files);
  for (const [n, file] of files.entries()) {
    const bytes = new Uint8Array(readFileSync(file));
    const facts = decodePathOf(bytes, o.scaleFor);
    const r: ImageResult = { file, ...facts };
    results.push(r);
    const ref = refs.get(file)!;
    if ('error' in ref) {
      r.error = `reference: ${ref.error}`;
      continue;
    }
    let ours: Uint8Array;
    try {
      ours = await ourCrop(bytes);
    } catch (err) {
      r.error = err instanceof Error ? err.message : String(err);
      continue;
    }
    const d = cropDiff(ours, ref.crop);
    hists.set(file, d.hist);
    Object.assign(r, { mean: d.mean, max: d.max, p999: percentileOf(d.hist, 99.9) });
    pairs.push({ i: results.length - 1, ref: ref.crop, ours });
    log(`${n + 1}/${files.length} ${basename(file)}: ${facts.path} mean ${d.mean.toFixed(3)} max ${d.max}`);
  }
  if (model) {
    const tensors = pairs.flatMap((p) => [toTensor(p.ref), toTensor(p.ours)]);
    const probs = await probabilities(model, tensors);
    pairs.forEach((p, k) => {
      results[p.i]!.prob = probDiff(probs[2 * k]!, probs[2 * k + 1]!);
    });
  }
  return { results, summary: summarize(results, hists) };
}

/** HEAD's short hash, with `+dirty` when src/ has uncommitted changes; FIDELITY_COMMIT overrides (e.g. for a snapshot). */
function commitOf(): string {
  if (process.env.FIDELITY_COMMIT) return process.env.FIDELITY_COMMIT;
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'src') ? '+dirty' : '');
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: 'string', multiple: true },
      out: { type: 'string', default: join(ROOT, 'bench/fidelity.md') },
      calib: { type: 'string', multiple: true },
      width: { type: 'string', default: '1' },
      // As test/node/fidelity.test.ts: keeps the instrument's response to +-1-level noise under the 0.02 target.
      'stem-blur': { type: 'string', default: '1.5' },
      'min-shorter': { type: 'string', default: String(SPEC.resizeShorter) },
      quiet: { type: 'boolean', default: false },
    },
  });
  const log = values.quiet ? () => {} : (s: string) => console.error(s);
  const dirs = values.images ?? [join(ROOT, 'bench/tmp/fidelity-corpus')];
  for (const d of dirs) {
    if (!existsSync(d)) throw new Error(`${d} does not exist: make it with /usr/bin/python3 scripts/make-fidelity-corpus.py`);
  }
  const calib =
    values.calib ?? [join(ROOT, '../shared/data/photos'), '/usr/share/backgrounds/mate/nature'].filter((d) => existsSync(d));
  const minShorter = Number(values['min-shorter']);
  const files = listImages(dirs);
  const { bytes, note } = await sensitiveModel(calib, Number(values.width), Number(values['stem-blur']), log);
  const t0 = performance.now();
  const run = await runFidelity(files, bytes, { log, scaleFor: (w, h) => jpegScaleFor(w, h, minShorter) });
  const commit = commitOf();
  const header = [
    `Decoding fidelity, ${new Date().toISOString().slice(0, 10)}, commit ${commit}: \`npx tsx bench/fidelity.ts\` on ${files.length} images (${dirs.map(shown).join(', ')}).`,
    `Ours: \`ourCrop\` in bench/fidelity.ts (the Worker's decode + resize); reference: Pillow ${'9.4'} full decode + exif_transpose + convert('RGB'), resized bit-exactly as Pillow's BILINEAR + CenterCrop (224x224x3 values per image).`,
    `Probabilities: ${note}; fp32, onnxruntime-node. Flips count images whose reference top-1/top-2 margin exceeds ${FLIP_MARGIN}. JPEG scale chosen as src/image/index.ts does for a shorter side of ${minShorter}.`,
  ].join('\n');
  const md = `${header}\n\n${markdownTable(run.summary)}\n`;
  writeFileSync(values.out, md);
  const json = values.out.replace(/\.md$/, '') + '.json';
  writeFileSync(
    json,
    `${JSON.stringify({ commit, images: files.length, model: note, summary: run.summary, results: run.results.map((r) => ({ ...r, file: shown(r.file) })) }, null, 1)}\n`,
  );
  log(`${((performance.now() - t0) / 1000).toFixed(0)} s; wrote ${shown(values.out)} and ${shown(json)}`);
  console.log(md);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

/**
 * Our JPEG decoder (src/image/jpeg/) against jpeg-js, and its reduced scales against Pillow.
 *
 *   npx tsx bench/jpeg-decode.ts                 speed: medians of interleaved runs
 *   npx tsx bench/jpeg-decode.ts --reduced DIR   crop difference of reduced-scale decodes
 *   npx tsx bench/jpeg-decode.ts --workerd [--against DIR] [--runs N] [FILE@SCALE ...]
 *                                                speed inside workerd (wrangler's, V8 defaults), where
 *                                                the Worker decodes; with --against, paired with the
 *                                                decoder of another checkout (e.g. `git archive <rev>
 *                                                src | tar -x -C DIR`): old/new ratios of interleaved runs
 *
 * --workerd defaults to the benchmark's own 12 MP baseline and progressive JPEGs at 1/4 and its
 * 640x480 at full scale (bench/tmp/images, made by `npm run bench`), else Pillow-made photos.
 *
 * --reduced reads DIR/*.jpg, each with DIR/<name>.rgb, Pillow's full RGB decode of it (made by
 * upscaling the photos in ../shared/data/photos to 1024, 2048 and 4032 on the long side with
 * Pillow, qualities 75..95, 4:4:4 / 4:2:2 / 4:2:0, baseline and progressive), and for every scale
 * 2, 4, 8 and reduced kernel prints mean |diff| and the 99.9th percentile of |diff| between
 * resizeCropU8(reduced, spec, reduction) and resizeCropU8(pillowFull, spec) (224 crop of 256).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { decode as jpegJsDecode } from 'jpeg-js';
import { readJpegHeader } from '../src/image/jpeg';
import { workerdAlone } from './workerd-alone';
import { decodeJpegImage, decodeJpegWith, type JpegScale } from '../src/image/jpeg/index';
import { resizeCropU8 } from '../src/preprocess/reference';
import type { RgbImage } from '../src/image/types';
import type { PreprocessSpec } from '../src/preprocess/types';

const SPEC: PreprocessSpec = { resizeShorter: 256, cropWidth: 224, cropHeight: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const LIMITS = { maxPixels: 100e6, maxMemoryMB: 1024 };

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const time = (f: () => void): number => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};

async function makePhoto(width: number, height: number, progressive: boolean): Promise<Uint8Array> {
  // A real photo upscaled (so the entropy data looks like a photo's), encoded by Pillow.
  const { execFileSync } = await import('node:child_process');
  const py = `import io,sys;from PIL import Image
im=Image.open('../shared/data/photos/chelsea.png').convert('RGB').resize((${width},${height}),Image.BICUBIC)
b=io.BytesIO();im.save(b,'JPEG',quality=90,subsampling=2,progressive=${progressive ? 'True' : 'False'});sys.stdout.buffer.write(b.getvalue())`;
  return new Uint8Array(execFileSync('/usr/bin/python3', ['-c', py], { maxBuffer: 64 << 20 }));
}

async function speed(): Promise<void> {
  const cases: { name: string; bytes: Uint8Array; scale: JpegScale; jpegJs: boolean }[] = [
    { name: '640x480 baseline 4:2:0', bytes: await makePhoto(640, 480, false), scale: 1, jpegJs: true },
    { name: '1920x1080 baseline 4:2:0', bytes: await makePhoto(1920, 1080, false), scale: 1, jpegJs: true },
  ];
  const big = await makePhoto(4032, 3024, true);
  const bigBase = await makePhoto(4032, 3024, false);
  cases.push({ name: '4032x3024 progressive, full', bytes: big, scale: 1, jpegJs: true });
  cases.push({ name: '4032x3024 progressive, 1/4', bytes: big, scale: 4, jpegJs: false });
  cases.push({ name: '4032x3024 progressive, 1/8', bytes: big, scale: 8, jpegJs: false });
  cases.push({ name: '4032x3024 baseline, full', bytes: bigBase, scale: 1, jpegJs: true });
  cases.push({ name: '4032x3024 baseline, 1/4', bytes: bigBase, scale: 4, jpegJs: false });
  for (const c of cases) {
    const header = readJpegHeader(c.bytes);
    const runs = c.bytes.length > 1e6 ? 5 : 15;
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < runs + 1; i++) {
      const a = time(() => decodeJpegImage(c.bytes, header, c.scale, LIMITS));
      const b = c.jpegJs ? time(() => jpegJsDecode(c.bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 2048 })) : 0;
      if (i > 0) {
        ours.push(a);
        theirs.push(b);
      }
    }
    const j = c.jpegJs ? `   jpeg-js ${median(theirs).toFixed(1)} ms` : '';
    console.log(`${c.name.padEnd(32)} ours ${median(ours).toFixed(1)} ms${j}`);
  }
}

function reduced(dir: string): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.jpg')).sort();
  const rows: { file: string; scale: number; kernel: string; ratio: number; mean: number; p999: number; max: number }[] = [];
  for (const f of files) {
    const bytes = new Uint8Array(readFileSync(join(dir, f)));
    const header = readJpegHeader(bytes);
    const full: RgbImage = { width: header.width, height: header.height, data: new Uint8Array(readFileSync(join(dir, f.replace(/\.jpg$/, '.rgb')))) };
    const ref = resizeCropU8(full, SPEC);
    for (const scale of [2, 4, 8] as const) {
      const shorter = Math.min(header.width, header.height);
      if (Math.ceil(shorter / scale) < SPEC.resizeShorter) continue;
      for (const kernel of ['box', 'lowfreq'] as const) {
        const w = Math.ceil(header.width / scale);
        const h = Math.ceil(header.height / scale);
        const data = new Uint8Array(w * h * 3);
        decodeJpegWith(bytes, header, scale, { write: (r, y0, n) => data.set(r.subarray(0, n * w * 3), y0 * w * 3) }, LIMITS, kernel);
        const got = resizeCropU8({ width: w, height: h, data }, SPEC, { fullWidth: header.width, fullHeight: header.height, scale });
        const diffs = new Uint8Array(got.length);
        let sum = 0;
        for (let i = 0; i < got.length; i++) {
          const d = Math.abs(got[i]! - ref[i]!);
          diffs[i] = d;
          sum += d;
        }
        const sorted = diffs.sort();
        rows.push({ file: f, scale, kernel, ratio: shorter / scale / SPEC.resizeShorter, mean: sum / got.length, p999: sorted[Math.floor(0.999 * sorted.length)]!, max: sorted[sorted.length - 1]! });
      }
    }
  }
  for (const r of rows) console.log(`${r.file.padEnd(34)} 1/${r.scale} ${r.kernel.padEnd(8)} shorter/256 ${r.ratio.toFixed(2).padStart(5)}  mean ${r.mean.toFixed(3)}  p99.9 ${r.p999}  max ${r.max}`);
  // Summary by kernel and by bucket of reduced shorter side / resizeShorter.
  const buckets = [1, 1.5, 2, 3, 100];
  for (const kernel of ['box', 'lowfreq']) {
    for (let b = 0; b < buckets.length - 1; b++) {
      const sel = rows.filter((r) => r.kernel === kernel && r.ratio >= buckets[b]! && r.ratio < buckets[b + 1]!);
      if (sel.length === 0) continue;
      const worstMean = Math.max(...sel.map((r) => r.mean));
      const worstP = Math.max(...sel.map((r) => r.p999));
      console.log(`${kernel.padEnd(8)} ratio [${buckets[b]}, ${buckets[b + 1]}): ${sel.length} decodes, worst mean ${worstMean.toFixed(3)}, worst p99.9 ${worstP}`);
    }
  }
}

/**
 * A Worker that decodes the POSTed JPEG `n` times with ours (`?v=cur`) or the reference
 * checkout's (`?v=ref`) and answers the milliseconds, run by workerd alone (no wrangler dev
 * proxy, no pipeline) so the figure is the decoder's.
 */
async function workerdSpeed(args: string[]): Promise<void> {
  const root = join(import.meta.dirname, '..');
  const opt = (name: string): string | undefined => {
    const k = args.indexOf(name);
    if (k < 0) return undefined;
    const v = args[k + 1];
    args.splice(k, 2);
    return v;
  };
  const against = opt('--against');
  const runs = Number(opt('--runs') ?? 15);
  let specs = args.filter((a) => a !== '--workerd');
  if (specs.length === 0) {
    const dir = join(root, 'bench/tmp/images');
    const have = (f: string): boolean => readdirSync(dir, { withFileTypes: true }).some((d) => d.name === f);
    try {
      if (have('4032x3024.jpg') && have('4032x3024-progressive.jpg') && have('640x480.jpg')) {
        specs = [`${dir}/4032x3024.jpg@4`, `${dir}/4032x3024-progressive.jpg@4`, `${dir}/640x480.jpg@1`];
      }
    } catch {
      // no bench images yet
    }
  }
  const inputs: { name: string; bytes: Uint8Array; scale: number }[] = [];
  if (specs.length === 0) {
    inputs.push({ name: '4032x3024 baseline (Pillow) @1/4', bytes: await makePhoto(4032, 3024, false), scale: 4 });
    inputs.push({ name: '4032x3024 progressive (Pillow) @1/4', bytes: await makePhoto(4032, 3024, true), scale: 4 });
    inputs.push({ name: '640x480 baseline (Pillow) @1', bytes: await makePhoto(640, 480, false), scale: 1 });
  } else {
    for (const spec of specs) {
      const [file, scale] = spec.split('@');
      inputs.push({ name: `${file!.split('/').pop()} @1/${scale ?? 1}`, bytes: new Uint8Array(readFileSync(file!)), scale: Number(scale ?? 1) });
    }
  }
  const worker = `
import { readJpegHeader } from ${JSON.stringify(join(root, 'src/image/jpeg'))};
import { decodeJpegImage as cur } from ${JSON.stringify(join(root, 'src/image/jpeg/index'))};
${against ? `import { decodeJpegImage as ref } from ${JSON.stringify(join(against, 'src/image/jpeg/index'))};` : 'const ref = cur;'}
const LIMITS = { maxPixels: 100e6, maxMemoryMB: 1024 };
export default {
  async fetch(req) {
    const u = new URL(req.url);
    const bytes = new Uint8Array(await req.arrayBuffer());
    const h = readJpegHeader(bytes);
    const decode = u.searchParams.get('v') === 'ref' ? ref : cur;
    const scale = Number(u.searchParams.get('s'));
    const n = Number(u.searchParams.get('n'));
    const t0 = performance.now();
    for (let i = 0; i < n; i++) decode(bytes, h, scale, LIMITS);
    return new Response(String(performance.now() - t0));
  },
};`;
  // The reference checkout has no node_modules of its own: its imports (hono) resolve from ours.
  const server = await workerdAlone(worker);
  try {
    const call = async (v: string, c: (typeof inputs)[number], n: number): Promise<number> =>
      Number(await server.post(`/?v=${v}&s=${c.scale}&n=${n}`, c.bytes)) / n;
    const version = server.version;
    console.log(`workerd ${version} (wrangler's); ${runs} runs after 3 warm-up; milliseconds per decode, medians`);
    for (const c of inputs) {
      const n = c.bytes.length < 3e5 ? 10 : 1; // small files: 10 decodes a request, for the clock
      const cur: number[] = [];
      const ref: number[] = [];
      for (let i = 0; i < runs + 3; i++) {
        const a = against ? await call('ref', c, n) : 0;
        const b = await call('cur', c, n);
        if (i >= 3) {
          ref.push(a);
          cur.push(b);
        }
      }
      const paired = against ? `   ref ${median(ref).toFixed(1).padStart(6)}   ref/ours ${median(ref.map((x, k) => x / cur[k]!)).toFixed(2)} (median of paired ratios)` : '';
      console.log(`${c.name.padEnd(40)} ours ${median(cur).toFixed(1).padStart(6)}${paired}`);
    }
  } finally {
    await server.close();
  }
}

const i = process.argv.indexOf('--reduced');
if (i >= 0) reduced(process.argv[i + 1] ?? '.');
else if (process.argv.includes('--workerd')) await workerdSpeed(process.argv.slice(2));
else await speed();

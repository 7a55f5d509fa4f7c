/**
 * Our JPEG decoder (src/image/jpeg/) against jpeg-js, and its reduced scales against Pillow.
 *
 *   npx tsx bench/jpeg-decode.ts                 speed: medians of interleaved runs
 *   npx tsx bench/jpeg-decode.ts --reduced DIR   crop difference of reduced-scale decodes
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

const i = process.argv.indexOf('--reduced');
if (i >= 0) reduced(process.argv[i + 1] ?? '.');
else await speed();

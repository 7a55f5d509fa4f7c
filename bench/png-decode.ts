/**
 * The streaming PNG decoder against the fast-png path it replaced, on a 12 MP photo-like PNG.
 *
 *   npx tsx bench/png-decode.ts [runs]
 *   npx tsx bench/png-decode.ts --workerd [--runs N] [FILE.png ...]
 *                                the wasm rows (zlib + unfilter) vs our JS ones inside workerd
 *
 * The image: test/fixtures/photos/camera.png (a real photo) decoded, upscaled to 4032x3024
 * (bilinear, RGB, plus a little noise so it is not unnaturally smooth), Paeth-filtered and
 * compressed at zlib level 6 as a typical encoder would. Timed, interleaved (the order
 * alternates every run), median of `runs` (default 7), wall clock and this process's CPU
 * time (user + system; steadier than the wall clock on a busy machine):
 *   fast-png     the previous decodePng: a streaming inflate to measure the data (fflate),
 *                then fast-png's decode (checkCrc, as before) holding the whole image
 *   wasm         decodePngTo with a sink that keeps nothing (what a resize sink costs extra
 *                is not included), rows by the wasm module (zlib + unfilter), as in the Worker
 *   js           the same with our JS inflater and unfilter
 *   collect      decodePng: wasm rows, collected into one RGB image
 */
import '../models/src/node-wasm'; // first: the .wasm loader, for the PNG rows module
import { readFileSync } from 'node:fs';
import { decode as fastPngDecode } from 'fast-png';
import { Unzlib, zlibSync } from 'fflate';
import { decodePng, decodePngTo, readPngHeader, usePngRows } from '../src/image/png';
import { workerdAlone } from './workerd-alone';

const WIDTH = 4032;
const HEIGHT = 3024;
const runs = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 7);

function crc32Table(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}
const CRC = crc32Table();
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  let c = 0xffffffff;
  for (let i = 4; i < 8 + data.length; i++) c = CRC[(c ^ out[i]!) & 0xff]! ^ (c >>> 8);
  view.setUint32(8 + data.length, (c ^ 0xffffffff) >>> 0);
  return out;
}

function makePng(): Uint8Array {
  const src = readFileSync(new URL('../test/fixtures/photos/camera.png', import.meta.url));
  const bytes = new Uint8Array(src);
  const photo = decodePng(bytes, readPngHeader(bytes), { maxPixels: 1e7 });
  const stride = WIDTH * 3;
  const raw = new Uint8Array((stride + 1) * HEIGHT);
  let prev = new Uint8Array(stride);
  let cur = new Uint8Array(stride);
  let seed = 1;
  for (let y = 0; y < HEIGHT; y++) {
    const sy = (y * (photo.height - 1)) / (HEIGHT - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(photo.height - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < WIDTH; x++) {
      const sx = (x * (photo.width - 1)) / (WIDTH - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(photo.width - 1, x0 + 1);
      const fx = sx - x0;
      for (let k = 0; k < 3; k++) {
        const p = (yy: number, xx: number) => photo.data[(yy * photo.width + xx) * 3 + k]!;
        const v = (p(y0, x0) * (1 - fx) + p(y0, x1) * fx) * (1 - fy) + (p(y1, x0) * (1 - fx) + p(y1, x1) * fx) * fy;
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        // A colour cast per channel, and +-2 of noise.
        cur[x * 3 + k] = Math.max(0, Math.min(255, Math.round(v * (0.8 + 0.1 * k) + 10 * k + (seed >>> 30) - 2)));
      }
    }
    const line = y * (stride + 1);
    raw[line] = 4;
    for (let i = 0; i < stride; i++) {
      const a = i >= 3 ? cur[i - 3]! : 0;
      const b = prev[i]!;
      const c = i >= 3 ? prev[i - 3]! : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a);
      const pb = Math.abs(p - b);
      const pc = Math.abs(p - c);
      raw[line + 1 + i] = (cur[i]! - (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
    }
    [prev, cur] = [cur, prev];
  }
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, WIDTH);
  new DataView(ihdr.buffer).setUint32(4, HEIGHT);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const z = zlibSync(raw, { level: 6 });
  const idats: Uint8Array[] = [];
  for (let i = 0; i < z.length; i += 65536) idats.push(chunk('IDAT', z.subarray(i, i + 65536)));
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), ...idats, chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}

/** The previous decodePng for an 8-bit RGB PNG: measure the inflated size, then fast-png. */
function fastPngPath(bytes: Uint8Array): Uint8Array {
  let pos = 8;
  const idats: Uint8Array[] = [];
  while (pos + 8 <= bytes.length) {
    const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (type === 'IDAT') idats.push(bytes.subarray(pos + 8, pos + 8 + len));
    if (type === 'IEND') break;
    pos += 12 + len;
  }
  let total = 0;
  const inflater = new Unzlib((c) => {
    total += c.length;
  });
  for (const c of idats) inflater.push(c, false);
  inflater.push(new Uint8Array(0), true);
  if (total < HEIGHT * (WIDTH * 3 + 1)) throw new Error('short');
  const png = fastPngDecode(bytes, { checkCrc: true });
  return png.data as Uint8Array; // 8-bit RGB: returned as is, as the old samplesToRgb did
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The streaming decode inside wrangler's workerd (the Worker's runtime, V8 defaults), the
 * wasm rows (zlib + unfilter) against our JS inflater and unfilter, interleaved: a Worker decodes the POSTed PNG into a sink
 * that only checksums the rows (the two must agree) and answers the milliseconds (workerd
 * alone, no wrangler dev proxy, no pipeline). Files: the arguments, else the benchmark's
 * 12 MP PNG (bench/tmp/images, made by `npm run bench`), else this script's.
 */
async function workerdSpeed(args: string[]): Promise<void> {
  const { existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  const root = join(import.meta.dirname, '..');
  const k = args.indexOf('--runs');
  const n = k >= 0 ? Number(args.splice(k, 2)[1]) : 11;
  let files = args.filter((a) => a !== '--workerd' && !/^\d+$/.test(a));
  const benchPng = join(root, 'bench/tmp/images/4032x3024-screen.png');
  if (files.length === 0 && existsSync(benchPng)) files = [benchPng];
  const inputs = files.length ? files.map((f) => ({ name: f.split('/').pop()!, bytes: new Uint8Array(readFileSync(f)) })) : [{ name: 'generated 4032x3024', bytes: makePng() }];
  const server = await workerdAlone(`
import { decodePngTo, readPngHeader, usePngRows } from ${JSON.stringify(join(root, 'src/image/png'))};
const LIMITS = { maxPixels: 100e6, maxMemoryMB: 64 };
export default {
  async fetch(req) {
    const kind = new URL(req.url).searchParams.get('v');
    const bytes = new Uint8Array(await req.arrayBuffer());
    const h = readPngHeader(bytes);
    // A sum over the rows, so that the two inflaters can be checked to give the same pixels.
    let sum = 0;
    const sink = { write(rows, y0, count) { const m = count * h.width * 3; for (let i = 0; i < m; i += 97) sum = (sum * 31 + rows[i] + y0) % 1000000007; } };
    usePngRows(kind);
    const t0 = performance.now();
    decodePngTo(bytes, h, sink, LIMITS);
    return new Response(JSON.stringify({ ms: performance.now() - t0, sum }));
  },
};`);
  try {
    const variants = ['js', 'wasm'];
    console.log(`workerd ${server.version} (wrangler's); ${n} interleaved runs after 2 warm-up, order rotating; milliseconds per decode, medians; same pixels checked`);
    for (const c of inputs) {
      const t: Record<string, number[]> = { js: [], wasm: [] };
      let want: number | undefined;
      for (let i = 0; i < n + 2; i++) {
        const order = i % 2 ? [...variants].reverse() : variants;
        for (const v of order) {
          const { ms, sum } = JSON.parse(await server.post(`/?v=${v}`, c.bytes)) as { ms: number; sum: number };
          want ??= sum;
          if (sum !== want) throw new Error(`workerd: ${v} gave other pixels than the other reader`);
          if (i >= 2) t[v]!.push(ms);
        }
      }
      const ratio = median(t.js!.map((x, j) => x / t.wasm![j]!));
      console.log(`${c.name.padEnd(24)} js ${median(t.js!).toFixed(0)} ms   wasm ${median(t.wasm!).toFixed(0)} ms   js/wasm ${ratio.toFixed(2)} (median of paired ratios)`);
    }
  } finally {
    await server.close();
  }
}

if (process.argv.includes('--workerd')) {
  await workerdSpeed(process.argv.slice(2));
  process.exit(0);
}

const bytes = makePng();
const header = readPngHeader(bytes);
console.log(`${WIDTH}x${HEIGHT} RGB PNG, ${(bytes.length / 2 ** 20).toFixed(1)} MB; ${runs} interleaved runs (median ms)`);

// Same pixels from both paths.
const a = fastPngPath(bytes);
const b = decodePng(bytes, header, { maxPixels: 2e7, maxMemoryMB: 512 }).data;
if (a.length !== b.length || !a.every((v, i) => v === b[i])) throw new Error('the two paths disagree');

const paths: Record<string, () => void> = {
  'fast-png': () => fastPngPath(bytes),
  wasm: () => {
    usePngRows('wasm');
    decodePngTo(bytes, header, { write() {} }, { maxPixels: 2e7, maxMemoryMB: 32 });
  },
  js: () => {
    usePngRows('js');
    decodePngTo(bytes, header, { write() {} }, { maxPixels: 2e7, maxMemoryMB: 32 });
    usePngRows('auto');
  },
  collect: () => decodePng(bytes, header, { maxPixels: 2e7, maxMemoryMB: 512 }),
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
const names = Object.keys(paths);
for (let r = 0; r < runs + 1; r++) {
  const order = r % 2 ? [...names].reverse() : names;
  for (const name of order) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    paths[name]!();
    const c = process.cpuUsage(c0);
    const ms = performance.now() - t0;
    if (r > 0) {
      // run 0 warms up
      times[name]!.push(ms);
      cpu[name]!.push((c.user + c.system) / 1000);
    }
  }
}
for (const name of names) {
  const t = times[name]!;
  console.log(
    `${name.padEnd(9)} wall median ${median(t).toFixed(0)} ms (min ${Math.min(...t).toFixed(0)}, max ${Math.max(...t).toFixed(0)}), ` +
      `CPU median ${median(cpu[name]!).toFixed(0)} ms`,
  );
}

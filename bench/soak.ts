/**
 * Soak: N minutes at concurrency C against a wrangler dev it starts (front Worker + both stage
 * Workers, as `npm start`), mixing valid photos of all sizes (test/fixtures/photos, plus 1920x1080
 * and 4032x3024 JPEGs made from them), bad inputs (truncated and corrupt files, an unsupported
 * format, an upload over MAX_BODY_BYTES), batches, and raw bodies. Reports requests by status,
 * p50/p99, and the isolate's onnxruntime heap over time (GET /models `isolate.wasmHeapBytes`).
 *
 *   npx tsx bench/soak.ts --minutes N --concurrency C [--model resnet18v1] [--hang-ms 30000] [--json out.json]
 *                         [--via runtime|proxy]
 *
 * Requests go straight to wrangler dev's runtime unless `--via proxy` (its dev proxy loses
 * requests under load: PROXY_RESET in bench/workerd.ts), each on a new connection
 * (bench/load-fetch.ts says why).
 *
 * Fails (exit 1) on any 5xx other than admission control's 503 `overloaded` with Retry-After,
 * on a request with no answer (network error) or slower than --hang-ms, or on heap growth of
 * more than 5% after warm-up (the first fifth of the run, at least 30 s).
 */
import { readdir, readFile, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { burstModel, isAdmission503, percentile } from './burst';
import { loadFetch } from './load-fetch';
import { CONFIGS, ensureUploaded, PROXY_RESET, WranglerDev } from './workerd';
import { PHOTOS, ROOT } from '../models/src/paths';

export interface SoakOptions {
  minutes: number;
  concurrency: number;
  model?: string;
  hangMs?: number;
  /** Heap samples every this many ms. */
  heapEveryMs?: number;
  /** Allowed growth of the wasm heap after warm-up, as a fraction. */
  maxHeapGrowth?: number;
  persistTo?: string;
  /** `runtime` (default): straight to wrangler dev's runtime; `proxy`: through its dev proxy (see bench/burst.ts). */
  via?: 'runtime' | 'proxy';
  onProgress?: (line: string) => void;
}

interface Input {
  kind: string;
  /** Statuses this input may get besides an admission 503. */
  expect: number[];
  /** Picks per round of the mix. */
  weight: number;
  body: () => { body: BodyInit; contentType?: string };
}

export interface SoakResult {
  minutes: number;
  concurrency: number;
  requests: number;
  byStatus: Record<string, number>;
  byKind: Record<string, Record<string, number>>;
  admission503: number;
  /** 5xx other than admission 503s, network errors, and hangs. */
  failures: Array<{ kind: string; status: number; atS: number; ms: number; body: string }>;
  /** Answers whose status was not the expected one (4xx/2xx mismatches: reported, not fatal). */
  unexpected: Array<{ kind: string; status: number; body: string }>;
  hangs: number;
  p50: number | null;
  p99: number | null;
  heap: Array<{ atS: number; wasmHeapBytes: number }>;
  heapAfterWarmup: number | null;
  heapMax: number | null;
  heapGrowth: number | null;
  passed: boolean;
  reasons: string[];
}

const MAX_BODY_BYTES = 20 * 1024 * 1024;

function multipart(files: Array<{ bytes: Uint8Array; name: string }>): FormData {
  const form = new FormData();
  for (const f of files) form.append('data', new Blob([f.bytes]), f.name);
  return form;
}

/** The request mix: every input is deterministic. */
export async function soakInputs(): Promise<Input[]> {
  const photosDir = PHOTOS;
  const photos = (await readdir(photosDir)).filter((f) => /\.(jpe?g|png)$/.test(f)).sort();
  const valid = await Promise.all(photos.map(async (name) => ({ name, bytes: new Uint8Array(await readFile(join(photosDir, name))) })));
  const coffee = valid.find((p) => p.name === 'coffee.jpg')!.bytes;
  const big = async (w: number, h: number) => new Uint8Array(await sharp(coffee).resize(w, h, { fit: 'cover' }).jpeg({ quality: 90 }).toBuffer());
  const hd = await big(1920, 1080);
  const mp12 = await big(4032, 3024);
  const truncatedGif = new Uint8Array(await readFile(join(ROOT, 'test/fixtures/gif/truncated-data.gif')));
  const truncatedJpeg = hd.slice(0, Math.floor(hd.length / 3));
  // A BMP header: a format we do not read (415).
  const bmp = new Uint8Array(64);
  bmp.set([0x42, 0x4d]);
  const oversized = new Uint8Array(MAX_BODY_BYTES + 1024);
  const inputs: Input[] = [
    ...valid.map((p) => ({ kind: `photo ${p.name}`, expect: [200], weight: 2, body: () => ({ body: multipart([p]) }) })),
    { kind: 'jpeg 1920x1080', expect: [200], weight: 3, body: () => ({ body: multipart([{ bytes: hd, name: 'hd.jpg' }]) }) },
    { kind: 'jpeg 4032x3024', expect: [200], weight: 2, body: () => ({ body: multipart([{ bytes: mp12, name: '12mp.jpg' }]) }) },
    { kind: 'raw body jpeg', expect: [200], weight: 2, body: () => ({ body: valid[0]!.bytes, contentType: 'application/octet-stream' }) },
    {
      kind: 'batch of 3',
      expect: [200],
      weight: 2,
      body: () => ({ body: multipart(valid.slice(0, 3).map((p) => ({ bytes: p.bytes, name: p.name }))) }),
    },
    { kind: 'truncated jpeg', expect: [422], weight: 2, body: () => ({ body: multipart([{ bytes: truncatedJpeg, name: 'cut.jpg' }]) }) },
    { kind: 'truncated gif', expect: [422, 200], weight: 1, body: () => ({ body: multipart([{ bytes: truncatedGif, name: 'cut.gif' }]) }) },
    { kind: 'unsupported (bmp)', expect: [415], weight: 1, body: () => ({ body: multipart([{ bytes: bmp, name: 'x.bmp' }]) }) },
    { kind: 'not an image', expect: [415], weight: 1, body: () => ({ body: 'not an image', contentType: 'text/plain' }) },
    { kind: 'no image', expect: [400], weight: 1, body: () => ({ body: new FormData() }) },
    { kind: 'oversized body', expect: [413], weight: 1, body: () => ({ body: oversized, contentType: 'application/octet-stream' }) },
  ];
  return inputs;
}

/** The heap of the isolate serving the front Worker, or undefined when /models does not answer. */
async function heapOf(base: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${base}/models`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { isolate?: { wasmHeapBytes?: number } };
    return body.isolate?.wasmHeapBytes;
  } catch {
    return undefined;
  }
}

export async function soak(o: SoakOptions): Promise<SoakResult> {
  const progress = o.onProgress ?? (() => undefined);
  const model = o.model ?? 'resnet18v1';
  const hangMs = o.hangMs ?? 30_000;
  const maxGrowth = o.maxHeapGrowth ?? 0.05;
  const persistTo = o.persistTo ?? join(tmpdir(), 'edge-resnet-soak');
  await mkdir(persistTo, { recursive: true });
  const { dir, manifest } = await burstModel(model, false);
  // Served under its own id: the default model of POST /predict.
  await ensureUploaded(persistTo, model, dir, manifest);
  const inputs = await soakInputs();
  const mix = inputs.flatMap((i) => Array<Input>(i.weight).fill(i));

  progress(`soak: starting wrangler dev (${model}, ${o.concurrency} clients, ${o.minutes} min)`);
  const dev = await WranglerDev.start(
    CONFIGS.map((c) => join(ROOT, c)),
    persistTo,
  );
  const base = (o.via ?? 'runtime') === 'proxy' ? dev.base : dev.runtimeBase;
  const byStatus: Record<string, number> = {};
  const byKind: Record<string, Record<string, number>> = {};
  const failures: SoakResult['failures'] = [];
  const unexpected: SoakResult['unexpected'] = [];
  const latencies: number[] = [];
  const heap: SoakResult['heap'] = [];
  let admission503 = 0;
  let hangs = 0;
  let requests = 0;
  const t0 = performance.now();
  const deadline = t0 + o.minutes * 60_000;
  const atS = () => Math.round((performance.now() - t0) / 100) / 10;
  let stopHeap = false;
  try {
    const sampler = (async () => {
      while (!stopHeap) {
        const h = await heapOf(base);
        if (h !== undefined) heap.push({ atS: atS(), wasmHeapBytes: h });
        await new Promise((r) => setTimeout(r, o.heapEveryMs ?? 5000));
      }
    })();
    let next = 0;
    const maxRequests = Math.max(1000, o.minutes * 60 * o.concurrency * 10);
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (performance.now() < deadline && requests < maxRequests) {
          const input = mix[next++ % mix.length]!;
          requests++;
          const { body, contentType } = input.body();
          const start = performance.now();
          let status = 0;
          let text = '';
          let retryAfter: string | null = null;
          let aborted = false;
          try {
            const res = await loadFetch(`${base}/predict?topk=1`, {
              method: 'POST',
              body,
              ...(contentType ? { headers: { 'content-type': contentType } } : {}),
              signal: AbortSignal.timeout(hangMs),
            });
            text = await res.text();
            status = res.status;
            retryAfter = res.headers.get('retry-after');
          } catch (err) {
            aborted = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
            const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
            text = `${err instanceof Error ? err.message : String(err)}${cause}`;
          }
          const ms = performance.now() - start;
          const key = aborted ? 'hang' : status === 0 ? 'network' : String(status);
          byStatus[key] = (byStatus[key] ?? 0) + 1;
          (byKind[input.kind] ??= {})[key] = (byKind[input.kind]![key] ?? 0) + 1;
          if (status === 200) latencies.push(ms);
          if (isAdmission503({ status, body: text, retryAfter })) {
            admission503++;
            continue;
          }
          if (aborted) hangs++;
          if (aborted || status === 0 || status >= 500) {
            const proxy = PROXY_RESET.test(text) ? ' [wrangler dev proxy]' : '';
            failures.push({ kind: input.kind, status, atS: atS(), ms: Math.round(ms), body: `${text.slice(0, 200)}${proxy}` });
            progress(`soak: FAILURE ${input.kind}: ${key} after ${Math.round(ms)} ms: ${text.slice(0, 120)}`);
          } else if (!input.expect.includes(status)) {
            unexpected.push({ kind: input.kind, status, body: text.slice(0, 200) });
          }
        }
      }),
    );
    stopHeap = true;
    await sampler;
    const last = await heapOf(base);
    if (last !== undefined) heap.push({ atS: atS(), wasmHeapBytes: last });
  } finally {
    stopHeap = true;
    await dev.stop();
  }

  const warmupS = Math.max(30, (o.minutes * 60) / 5);
  const after = heap.filter((h) => h.atS >= warmupS);
  const heapAfterWarmup = after[0]?.wasmHeapBytes ?? null;
  const heapMax = after.length ? Math.max(...after.map((h) => h.wasmHeapBytes)) : null;
  const heapGrowth = heapAfterWarmup && heapMax !== null ? heapMax / heapAfterWarmup - 1 : null;
  const reasons: string[] = [];
  const bad5xx = failures.filter((f) => f.status >= 500).length;
  const network = failures.filter((f) => f.status === 0).length - hangs;
  if (bad5xx) reasons.push(`${bad5xx} 5xx other than admission 503s`);
  if (hangs) reasons.push(`${hangs} request(s) over ${hangMs} ms`);
  if (network) reasons.push(`${network} request(s) without an answer (network error)`);
  if (heapGrowth === null) reasons.push(`no heap samples after the ${warmupS} s warm-up`);
  else if (heapGrowth > maxGrowth) reasons.push(`wasm heap grew ${(heapGrowth * 100).toFixed(1)}% after warm-up (limit ${maxGrowth * 100}%)`);
  return {
    minutes: o.minutes,
    concurrency: o.concurrency,
    requests,
    byStatus,
    byKind,
    admission503,
    failures,
    unexpected,
    hangs,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    heap,
    heapAfterWarmup,
    heapMax,
    heapGrowth,
    passed: reasons.length === 0,
    reasons,
  };
}

const MiB = 1024 * 1024;

export function renderSoak(r: SoakResult): string {
  const statuses = Object.entries(r.byStatus)
    .sort()
    .map(([s, n]) => `${s}: ${n}`)
    .join(', ');
  const heapLine = r.heap.map((h) => `${h.atS}s ${(h.wasmHeapBytes / MiB).toFixed(1)}`).join(', ');
  return [
    `Soak: ${r.minutes} min at concurrency ${r.concurrency}: ${r.requests} requests (${statuses}); admission 503s ${r.admission503}`,
    `200s: p50 ${r.p50?.toFixed(0)} ms, p99 ${r.p99?.toFixed(0)} ms`,
    `wasm heap (MiB) over time: ${heapLine}`,
    `heap after warm-up ${r.heapAfterWarmup !== null ? (r.heapAfterWarmup / MiB).toFixed(1) : '-'} MiB, max ${r.heapMax !== null ? (r.heapMax / MiB).toFixed(1) : '-'} MiB, growth ${r.heapGrowth !== null ? (r.heapGrowth * 100).toFixed(2) : '-'}%`,
    `by input: ${Object.entries(r.byKind).map(([k, v]) => `${k} {${Object.entries(v).map(([s, n]) => `${s}: ${n}`).join(', ')}}`).join('; ')}`,
    ...(r.unexpected.length ? [`unexpected statuses (not fatal): ${r.unexpected.slice(0, 10).map((u) => `${u.kind} -> ${u.status} ${u.body.slice(0, 80)}`).join(' | ')}`] : []),
    ...r.failures.slice(0, 20).map((f) => `FAILURE at ${f.atS}s: ${f.kind}: ${f.status} after ${f.ms} ms: ${f.body}`),
    r.passed ? 'PASS' : `FAIL: ${r.reasons.join('; ')}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '8' },
      model: { type: 'string', default: 'resnet18v1' },
      'hang-ms': { type: 'string', default: '30000' },
      via: { type: 'string', default: 'runtime' },
      json: { type: 'string' },
    },
  });
  if (values.via !== 'runtime' && values.via !== 'proxy') throw new Error('--via is runtime or proxy');
  const minutes = Number(values.minutes);
  const concurrency = Number(values.concurrency);
  if (!(minutes > 0) || !(Number.isInteger(concurrency) && concurrency >= 1)) throw new Error('usage: npx tsx bench/soak.ts --minutes N --concurrency C');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void Promise.all([...WranglerDev.live].map((d) => d.stop())).then(() => process.exit(130)));
  }
  const result = await soak({ minutes, concurrency, model: values.model, hangMs: Number(values['hang-ms']), via: values.via, onProgress: (l) => console.error(l) });
  console.log(renderSoak(result));
  if (values.json) await writeFile(values.json, `${JSON.stringify(result, null, 2)}\n`);
  process.exitCode = result.passed ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}

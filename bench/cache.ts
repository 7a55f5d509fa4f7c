/**
 * Result cache figure (src/cache): the latency of a cache miss against a hit for the same
 * image, through the real Worker under `wrangler dev` (one fresh wrangler dev, local R2).
 *
 *   npx tsx bench/cache.ts [--model resnet18v1] [--n 20] [--sizes 640x480,4032x3024]
 *                          [--workers snapshot|source] [--json out.json]
 *
 * Per size, `n` distinct JPEGs (the same pixels, each with its own comment segment, hence its
 * own SHA-256) are each posted twice, back to back: the first answer must be `X-Cache: MISS`,
 * the second `HIT`; anything else aborts the run. Requests go to the runtime's own address
 * (`runtimeBase`, no dev proxy), whose host is 127.0.0.1, so the backing is the Cache API; a
 * `Host: <name>.workers.dev` row measures the KV (RESULTS) backing the same way. Client time is
 * request sent to body read; the server's is Server-Timing `total`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { burstJpeg, burstModel } from './burst';
import { summarize, type Summary } from './stats';
import { CONFIGS, ensureUploaded, snapshotWorkers, WranglerDev } from './workerd';
import { ROOT } from '../models/src/paths';

export interface CacheRow {
  size: string;
  bytes: number;
  backing: 'cache-api' | 'kv';
  miss: { client: Summary; server: Summary };
  hit: { client: Summary; server: Summary; cache: Summary };
}

export interface CacheFigure {
  model: string;
  n: number;
  rows: CacheRow[];
}

interface Timed {
  clientMs: number;
  serverMs: number;
  cacheMs: number;
  xCache: string | null;
}

/** `jpeg` with a COM segment after SOI: a distinct SHA-256, the same pixels. */
function variant(jpeg: Uint8Array, tag: string): Uint8Array {
  const text = new TextEncoder().encode(tag);
  const out = new Uint8Array(jpeg.length + 4 + text.length);
  out.set(jpeg.subarray(0, 2));
  out.set([0xff, 0xfe, (text.length + 2) >> 8, (text.length + 2) & 0xff], 2);
  out.set(text, 6);
  out.set(jpeg.subarray(2), 6 + text.length);
  return out;
}

/**
 * One POST through node:http, which sends the Host header it is given (fetch replaces it):
 * the Worker takes its URL, and so its cache backing, from that name.
 */
function post(base: string, model: string, body: Uint8Array, host: string | undefined): Promise<Timed> {
  const url = new URL(`${base}/predict/${model}`);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', headers: { 'Content-Type': 'image/jpeg', 'Content-Length': body.length, ...(host ? { Host: host } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const clientMs = performance.now() - started;
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
          const timing = String(res.headers['server-timing'] ?? '');
          const dur = (name: string) => Number(new RegExp(`${name};dur=([\\d.]+)`).exec(timing)?.[1] ?? NaN);
          const xCache = res.headers['x-cache'];
          resolve({ clientMs, serverMs: dur('total'), cacheMs: dur('cache'), xCache: typeof xCache === 'string' ? xCache : null });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function cacheFigure(o: { model: string; n: number; sizes: Array<[number, number]>; workers: 'snapshot' | 'source'; onProgress?: (line: string) => void }): Promise<CacheFigure> {
  const progress = o.onProgress ?? (() => undefined);
  const persistTo = join(tmpdir(), 'edge-resnet-cache-bench');
  await mkdir(persistTo, { recursive: true });
  const { dir, manifest } = await burstModel(o.model, false);
  await ensureUploaded(persistTo, o.model, dir, manifest);
  const configs = o.workers === 'snapshot' ? (await snapshotWorkers(join(persistTo, `.snapshot-${process.pid}`))).all : CONFIGS.map((c) => join(ROOT, c));
  const dev = await WranglerDev.start(configs, persistTo, undefined, { resultCache: true });
  const rows: CacheRow[] = [];
  try {
    const base = dev.runtimeBase;
    const run = `${process.pid}-${Date.now()}`;
    // Warm the isolate (model load, first compilations) on an image that is not measured.
    for (let i = 0; i < 3; i++) await post(base, o.model, variant(await burstJpeg(320, 240), `warm ${run} ${i}`), undefined);
    for (const [width, height] of o.sizes) {
      const jpeg = await burstJpeg(width, height);
      for (const [backing, host] of [['cache-api', undefined], ['kv', 'bench.workers.dev']] as const) {
        const misses: Timed[] = [];
        const hits: Timed[] = [];
        for (let i = 0; i < o.n; i++) {
          const image = variant(jpeg, `bench ${run} ${backing} ${width}x${height} ${i}`);
          const miss = await post(base, o.model, image, host);
          const hit = await post(base, o.model, image, host);
          if (miss.xCache !== 'MISS' || hit.xCache !== 'HIT') {
            throw new Error(`${backing} ${width}x${height} #${i}: X-Cache ${miss.xCache} then ${hit.xCache}, expected MISS then HIT`);
          }
          misses.push(miss);
          hits.push(hit);
        }
        const row: CacheRow = {
          size: `${width}x${height}`,
          bytes: jpeg.length,
          backing,
          miss: { client: summarize(misses.map((t) => t.clientMs)), server: summarize(misses.map((t) => t.serverMs)) },
          hit: {
            client: summarize(hits.map((t) => t.clientMs)),
            server: summarize(hits.map((t) => t.serverMs)),
            cache: summarize(hits.map((t) => t.cacheMs)),
          },
        };
        rows.push(row);
        progress(describeRow(row));
      }
    }
  } finally {
    await dev.stop();
  }
  return { model: o.model, n: o.n, rows };
}

const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

function describeRow(r: CacheRow): string {
  return `${r.size} ${r.backing}: miss ${f(r.miss.client.median)} ms, hit ${f(r.hit.client.median)} ms (client medians)`;
}

export function cacheTable(fig: CacheFigure): string {
  const lines = [
    `Result cache, ${fig.model} int8, one image per request; medians / nearest-rank p95 of ${fig.n} pairs (milliseconds)`,
    '',
    '| image | backing | miss, client | hit, client | miss / hit | miss, server total | hit, server total | hit, cache lookup |',
    '|---|---|---|---|---|---|---|---|',
    ...fig.rows.map(
      (r) =>
        `| ${r.size} (${Math.round(r.bytes / 1024)} KB) | ${r.backing} | ${f(r.miss.client.median)} / ${f(r.miss.client.p95)} | ${f(r.hit.client.median)} / ${f(r.hit.client.p95)} | ${(r.miss.client.median / r.hit.client.median).toFixed(1)}x | ${f(r.miss.server.median)} | ${f(r.hit.server.median)} | ${f(r.hit.cache.median)} |`,
    ),
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'resnet18v1' },
      n: { type: 'string', default: '20' },
      sizes: { type: 'string', default: '640x480,4032x3024' },
      workers: { type: 'string', default: 'snapshot' },
      json: { type: 'string' },
    },
  });
  const sizes = values.sizes!.split(',').map((s) => s.split('x').map(Number) as [number, number]);
  const workers = values.workers === 'source' ? 'source' : 'snapshot';
  const stop = () => void Promise.all([...WranglerDev.live].map((d) => d.stop())).then(() => process.exit(130));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const fig = await cacheFigure({ model: values.model!, n: Number(values.n), sizes, workers, onProgress: (l) => console.error(l) });
  console.log(cacheTable(fig));
  if (values.json) await writeFile(values.json, JSON.stringify(fig, null, 2));
}

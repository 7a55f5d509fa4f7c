/**
 * Cold bursts: a fresh `wrangler dev` (front Worker + both stage Workers, as `npm start` runs
 * them) per round, and right after it first answers, `clients` clients posting a 768x576 JPEG
 * back to back for `seconds`. Reports per round: requests, 200s, admission 503s (type
 * `overloaded` with Retry-After: counted apart, they are the Worker shedding load as designed),
 * every other failure with its status and body, and p50/p99 of the 200s.
 *
 *   npx tsx bench/burst.ts [--model resnet18v1] [--split] [--clients 16] [--seconds 20] [--rounds 5]
 *                          [--workers source|snapshot] [--via runtime|proxy] [--connections close|keep-alive]
 *                          [--hang-ms 60000] [--json out.json]
 *
 * `--split` serves the model split across the front and stage Workers (the int8 model's
 * manifest must have stages: `npm run models -- split <id>`; without a full-size build, the
 * tests' eighth-width split resnet101v1 is used). `--workers snapshot` serves bundles made once
 * (bench/workerd.ts `snapshotWorkers`) instead of the sources, which is what the benchmark does.
 * `--via proxy` sends through wrangler dev's port instead of straight to its runtime: its dev
 * proxy loses requests under bursts, which a deployed Worker never sees (PROXY_RESET).
 *
 * `coldBurst()` is the function the main benchmark can call for its "cold burst" figure.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFetch, type Connections } from './load-fetch';
import sharp from 'sharp';
import type { ModelManifest } from '../src/models/manifest';
import { CONFIGS, ensureUploaded, PROXY_RESET, snapshotWorkers, WranglerDev } from './workerd';
import { DEFAULT_OUT, modelDir, PHOTOS, ROOT } from '../models/src/paths';

export interface BurstOptions {
  /** Zoo id of the model (int8). */
  model: string;
  /** Serve it split across the front and stage Workers. */
  split: boolean;
  clients: number;
  seconds: number;
  rounds: number;
  /** Local R2 folder (reused across rounds: a round's isolates are fresh, its R2 need not be). */
  persistTo?: string;
  /** `source`: the wrangler.toml files as `npm start` serves them; `snapshot`: bundles made once. */
  workers?: 'source' | 'snapshot';
  /**
   * Where the clients send: `runtime` (default) straight to the workerd that runs the Workers, as
   * a deployed Worker is reached; `proxy` through wrangler dev's port and its dev proxy, which
   * drops connections under bursts (PROXY_RESET in bench/workerd.ts).
   */
  via?: 'runtime' | 'proxy';
  /** A request taking longer than this is aborted and counted as a hang. */
  hangMs?: number;
  /**
   * `close` (default): a new connection per request; `keep-alive`: each client reuses its
   * connection, as fetch does, and meets workerd's 5 s keep-alive race while the isolate is
   * busy (bench/load-fetch.ts, bench/keepalive-race.ts).
   */
  connections?: Connections;
  /** Upper bound on requests per round, whatever the time (every loop stops by itself). */
  maxRequests?: number;
  /** The JPEG posted; default 768x576 made from test/fixtures/photos/coffee.jpg. */
  image?: Uint8Array;
  /** Folder for each round's wrangler dev log (default: none kept). */
  logDir?: string;
  onProgress?: (line: string) => void;
}

export interface BurstFailure {
  /** 0: no HTTP answer (network error, or aborted as a hang). */
  status: number;
  /** Request start, milliseconds after wrangler dev first answered. */
  atMs: number;
  clientMs: number;
  kind: 'proxy-restart' | 'hang' | 'network' | 'http';
  body: string;
}

export interface BurstRound {
  round: number;
  /** wrangler dev spawn to first answer. */
  readyMs: number;
  requests: number;
  ok: number;
  /** 503 `overloaded` with Retry-After: admission control, counted apart from failures. */
  admission503: number;
  /** Longest of those 503s, client-observed (they must be fast: at most ADMISSION_WAIT_MS + a little). */
  admissionMaxMs: number | null;
  failures: BurstFailure[];
  /** Client-observed latency of the 200s. */
  p50: number | null;
  p99: number | null;
  max: number | null;
  /** wrangler dev log lines that say it reloaded the Workers, and workerd's own error lines. */
  reloads: number;
  logErrors: string[];
  logFile?: string;
}

export interface ColdBurstFigure {
  model: string;
  split: boolean;
  stages: number;
  clients: number;
  seconds: number;
  workers: 'source' | 'snapshot';
  via: 'runtime' | 'proxy';
  connections: Connections;
  rounds: BurstRound[];
  totals: { requests: number; ok: number; admission503: number; failed: number; hangs: number; proxyRestarts: number };
  /** Over the 200s of all rounds. */
  p50: number | null;
  p99: number | null;
}

const DEFAULT_PERSIST = join(tmpdir(), 'edge-resnet-burst');

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The default burst image: 768x576, the size the issue reproduced with. */
export async function burstJpeg(width = 768, height = 576): Promise<Uint8Array> {
  const photo = await readFile(join(PHOTOS, 'coffee.jpg'));
  return new Uint8Array(await sharp(photo).resize(width, height, { fit: 'cover' }).jpeg({ quality: 90 }).toBuffer());
}

/**
 * The int8 model to serve: models/out/<id>/int8 (the CLI's build) when there is one, else the
 * tests' build of that id. `split` needs a manifest with stages; whole strips them.
 */
export async function burstModel(id: string, split: boolean): Promise<{ dir: string; manifest: ModelManifest }> {
  const cli = modelDir(DEFAULT_OUT, id, 'int8');
  let found: { dir: string; manifest: ModelManifest } | undefined;
  if (existsSync(join(cli, 'manifest.json'))) {
    const manifest = JSON.parse(await readFile(join(cli, 'manifest.json'), 'utf8')) as ModelManifest;
    if (!split || manifest.stages?.length) found = { dir: cli, manifest };
  }
  if (!found) {
    const { ensureTestModel } = await import('../test/models');
    found = await ensureTestModel(id, 'int8');
  }
  if (split && !found.manifest.stages?.length) {
    throw new Error(`${id} int8 is not split (run \`npm run models -- split ${id}\`)`);
  }
  if (split) return found;
  const { stages: _, ...whole } = found.manifest;
  return { dir: found.dir, manifest: whole };
}

/** Served ids: the split and whole variants live side by side in one local R2. */
export const servedIdOf = (model: string, split: boolean): string => (split ? `${model}-burst-split` : `${model}-burst`);

interface Answer {
  status: number;
  atMs: number;
  clientMs: number;
  body: string;
  retryAfter: string | null;
  aborted: boolean;
}

async function post(base: string, id: string, jpeg: Uint8Array, t0: number, hangMs: number, connections: Connections): Promise<Answer> {
  const form = new FormData();
  form.append('data', new Blob([jpeg], { type: 'image/jpeg' }), 'burst.jpg');
  const start = performance.now();
  const atMs = start - t0;
  try {
    const res = await loadFetch(`${base}/predict/${id}?topk=1`, { method: 'POST', body: form, signal: AbortSignal.timeout(hangMs) }, connections);
    const body = await res.text();
    return { status: res.status, atMs, clientMs: performance.now() - start, body: res.status === 200 ? '' : body.slice(0, 300), retryAfter: res.headers.get('retry-after'), aborted: false };
  } catch (err) {
    const aborted = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return { status: 0, atMs, clientMs: performance.now() - start, body: `${err instanceof Error ? err.message : String(err)}${cause}`, retryAfter: null, aborted };
  }
}

export function isAdmission503(a: { status: number; body: string; retryAfter: string | null }): boolean {
  if (a.status !== 503 || !a.retryAfter) return false;
  try {
    return (JSON.parse(a.body) as { type?: unknown }).type === 'overloaded';
  } catch {
    return false;
  }
}

/** `clients` loops posting until `seconds` have passed (or `maxRequests` were sent). */
export async function burst(
  base: string,
  id: string,
  jpeg: Uint8Array,
  o: { clients: number; seconds: number; hangMs: number; maxRequests: number; connections?: Connections },
): Promise<Answer[]> {
  const answers: Answer[] = [];
  const t0 = performance.now();
  const deadline = t0 + o.seconds * 1000;
  let sent = 0;
  await Promise.all(
    Array.from({ length: o.clients }, async () => {
      while (performance.now() < deadline && sent < o.maxRequests) {
        sent++;
        answers.push(await post(base, id, jpeg, t0, o.hangMs, o.connections ?? 'close'));
      }
    }),
  );
  return answers;
}

export function summarizeRound(round: number, readyMs: number, answers: readonly Answer[], log: string): BurstRound {
  const ok = answers.filter((a) => a.status === 200);
  const admission = answers.filter(isAdmission503);
  const failures: BurstFailure[] = answers
    .filter((a) => a.status !== 200 && !isAdmission503(a))
    .map((a) => ({
      status: a.status,
      atMs: Math.round(a.atMs),
      clientMs: Math.round(a.clientMs),
      kind: a.aborted ? 'hang' : a.status === 503 && PROXY_RESET.test(a.body) ? 'proxy-restart' : a.status === 0 ? 'network' : 'http',
      body: a.body,
    }));
  const lat = ok.map((a) => a.clientMs);
  const lines = log.split('\n');
  return {
    round,
    readyMs: Math.round(readyMs),
    requests: answers.length,
    ok: ok.length,
    admission503: admission.length,
    admissionMaxMs: admission.length ? Math.round(Math.max(...admission.map((a) => a.clientMs))) : null,
    failures,
    p50: round1(percentile(lat, 50)),
    p99: round1(percentile(lat, 99)),
    max: round1(percentile(lat, 100)),
    // wrangler's own words when it reloads the Workers (the debug log's reloadStart/Complete are not counted).
    reloads: lines.filter((l) => /Reloading local server/.test(l)).length,
    logErrors: lines.filter((l) => /\b(error|uncaught|exception|restarted|reset by peer|Broken pipe|overloaded: false)\b/i.test(l) && !/\[wrangler:info\] POST/.test(l)).slice(0, 20),
  };
}

const round1 = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);

/** Runs `rounds` cold bursts, each in a fresh wrangler dev. */
export async function coldBurst(o: BurstOptions): Promise<ColdBurstFigure> {
  const progress = o.onProgress ?? (() => undefined);
  const persistTo = o.persistTo ?? DEFAULT_PERSIST;
  const workers = o.workers ?? 'source';
  const via = o.via ?? 'runtime';
  const hangMs = o.hangMs ?? 60_000;
  const maxRequests = o.maxRequests ?? 5000;
  await mkdir(persistTo, { recursive: true });
  const { dir, manifest } = await burstModel(o.model, o.split);
  const id = servedIdOf(o.model, o.split);
  await ensureUploaded(persistTo, id, dir, manifest);
  const jpeg = o.image ?? (await burstJpeg());
  let configs = CONFIGS.map((c) => join(ROOT, c));
  if (workers === 'snapshot') configs = (await snapshotWorkers(join(persistTo, `.snapshot-${process.pid}`))).all;
  if (o.logDir) await mkdir(o.logDir, { recursive: true });

  const rounds: BurstRound[] = [];
  for (let r = 1; r <= o.rounds; r++) {
    progress(`${id}: round ${r}/${o.rounds}: fresh wrangler dev`);
    const dev = await WranglerDev.start(configs, persistTo);
    let answers: Answer[];
    try {
      progress(`${id}: round ${r}/${o.rounds}: ready in ${Math.round(dev.readyMs)} ms; ${o.clients} clients x ${o.seconds} s via the ${via}`);
      answers = await burst(via === 'proxy' ? dev.base : dev.runtimeBase, id, jpeg, { clients: o.clients, seconds: o.seconds, hangMs, maxRequests, connections: o.connections ?? 'close' });
      // Let the log catch up with the last answers.
      await new Promise((res) => setTimeout(res, 300));
    } finally {
      await dev.stop();
    }
    const log = dev.tail(20_000);
    const summary = summarizeRound(r, dev.readyMs, answers, log);
    if (o.logDir) {
      summary.logFile = join(o.logDir, `${id}-round-${r}.log`);
      await writeFile(summary.logFile, log);
    }
    rounds.push(summary);
    progress(`${id}: round ${r}: ${describeRound(summary)}`);
  }
  const sum = (f: (r: BurstRound) => number) => rounds.reduce((s, r) => s + f(r), 0);
  // p50/p99 over all rounds: recompute from per-round figures is not exact, so keep the 200s' latencies.
  return {
    model: o.model,
    split: o.split,
    stages: manifest.stages?.length ?? 1,
    clients: o.clients,
    seconds: o.seconds,
    workers,
    via,
    connections: o.connections ?? 'close',
    rounds,
    totals: {
      requests: sum((r) => r.requests),
      ok: sum((r) => r.ok),
      admission503: sum((r) => r.admission503),
      failed: sum((r) => r.failures.length),
      hangs: sum((r) => r.failures.filter((f) => f.kind === 'hang').length),
      proxyRestarts: sum((r) => r.failures.filter((f) => f.kind === 'proxy-restart').length),
    },
    p50: median(rounds.map((r) => r.p50)),
    p99: maxOf(rounds.map((r) => r.p99)),
  };
}

const median = (v: Array<number | null>): number | null => percentile(v.filter((x): x is number => x !== null), 50);
const maxOf = (v: Array<number | null>): number | null => percentile(v.filter((x): x is number => x !== null), 100);

export function describeRound(r: BurstRound): string {
  const fails = r.failures.length
    ? `; FAILED ${r.failures.length}: ${r.failures.map((f) => `${f.kind} ${f.status} at ${f.atMs} ms after ${f.clientMs} ms (${f.body.slice(0, 80)})`).join(' | ')}`
    : '';
  return (
    `ready ${r.readyMs} ms, ${r.requests} requests, ${r.ok} x 200, ${r.admission503} admission 503` +
    (r.admissionMaxMs !== null ? ` (max ${r.admissionMaxMs} ms)` : '') +
    `, ${r.failures.length} failed; p50 ${r.p50} / p99 ${r.p99} / max ${r.max} ms; ${r.reloads} reload line(s)${fails}`
  );
}

export function renderFigure(f: ColdBurstFigure): string {
  const head = `Cold burst: ${f.model} int8 ${f.split ? `split in ${f.stages} Workers` : 'whole'}, ${f.clients} clients x ${f.seconds} s, fresh wrangler dev (${f.workers}) per round, sent ${f.via === 'proxy' ? "through wrangler dev's proxy" : 'to the runtime'}${f.connections === 'close' ? ', a new connection per request' : ', connections kept alive'}`;
  const rows = f.rounds.map(
    (r) =>
      `| ${r.round} | ${r.readyMs} | ${r.requests} | ${r.ok} | ${r.admission503}${r.admissionMaxMs !== null ? ` (max ${r.admissionMaxMs} ms)` : ''} | ${r.failures.length}${r.failures.length ? `: ${[...new Set(r.failures.map((x) => `${x.kind} ${x.status}`))].join(', ')}` : ''} | ${r.p50} | ${r.p99} |`,
  );
  const t = f.totals;
  return [
    head,
    '',
    '| round | ready ms | requests | 200 | admission 503 | other failures | p50 ms | p99 ms |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Total: ${t.requests} requests, ${t.ok} x 200, ${t.admission503} admission 503s, ${t.failed} failed (${t.hangs} hangs, ${t.proxyRestarts} "worker restarted" 503s); p50 ${f.p50} ms (median of rounds), p99 ${f.p99} ms (worst round)`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'resnet18v1' },
      split: { type: 'boolean', default: false },
      clients: { type: 'string', default: '16' },
      seconds: { type: 'string', default: '20' },
      rounds: { type: 'string', default: '5' },
      workers: { type: 'string', default: 'source' },
      via: { type: 'string', default: 'runtime' },
      connections: { type: 'string', default: 'close' },
      'hang-ms': { type: 'string', default: '60000' },
      'persist-to': { type: 'string' },
      'log-dir': { type: 'string', default: join(tmpdir(), 'edge-resnet-burst-logs') },
      json: { type: 'string' },
    },
  });
  const num = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${v}`);
    return n;
  };
  if (values.workers !== 'source' && values.workers !== 'snapshot') throw new Error(`--workers is source or snapshot`);
  if (values.via !== 'runtime' && values.via !== 'proxy') throw new Error(`--via is runtime or proxy`);
  if (values.connections !== 'keep-alive' && values.connections !== 'close') throw new Error(`--connections is keep-alive or close`);
  const stop = () => Promise.all([...WranglerDev.live].map((d) => d.stop()));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop().then(() => process.exit(130)));
  const figure = await coldBurst({
    model: values.model,
    split: values.split,
    clients: num('clients', values.clients, 1),
    seconds: num('seconds', values.seconds, 1),
    rounds: num('rounds', values.rounds, 1),
    workers: values.workers,
    via: values.via,
    connections: values.connections,
    hangMs: num('hang-ms', values['hang-ms'], 1000),
    ...(values['persist-to'] ? { persistTo: values['persist-to'] } : {}),
    logDir: values['log-dir'],
    onProgress: (line) => console.error(line),
  });
  console.log(renderFigure(figure));
  for (const r of figure.rounds) for (const f of r.failures) console.log(`round ${r.round}: ${f.kind} ${f.status} at ${f.atMs} ms after ${f.clientMs} ms: ${f.body}`);
  if (values.json) await writeFile(values.json, `${JSON.stringify(figure, null, 2)}\n`);
  process.exitCode = figure.totals.failed === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}

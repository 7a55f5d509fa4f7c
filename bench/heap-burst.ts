/**
 * The isolate's memory under a burst of large uploads (issue #11, admission control): 16 clients
 * post a 12 MP image at once, for each format, to a fresh `wrangler dev` serving the largest
 * model that runs whole (ResNet-50 int8, ~84 MiB of onnxruntime heap). Reports what each burst
 * got (200s, admission control's fast 503s, anything else) and the isolate's peak memory:
 *
 * - V8's own figures through the runtime's inspector (`Runtime.getHeapUsage`, polled): the
 *   JS heap in use and the ArrayBuffer backing stores (uploads, decoders' buffers, tensors);
 * - onnxruntime's wasm heap as the Worker reports it (`GET /models`, `isolate.wasmHeapBytes`),
 *   which V8's backing-store figure does not include; the isolate's total is the sum;
 * - the runtime process's resident memory (/proc), which also holds workerd itself and the other
 *   Workers, so only its growth over the warm baseline says something.
 *
 *   npx tsx bench/heap-burst.ts [--model resnet50v1] [--clients 16] [--gc] [--no-inspector]
 *                               [--connections close|keep-alive] [--snapshot MS]
 *                               [--gc-trace] [--json out.json]
 *
 * The inspector answers only when the isolate's thread is between tasks and polls its sockets;
 * under such a burst it rarely gets there before the burst is over, so only samples answered
 * while the burst's requests were in flight are counted (often none: README, "Holding up under
 * load"). V8's heap in use counts garbage not yet collected, so a sample bounds the live memory
 * from above; with `--gc` every sample first forces a full collection
 * (HeapProfiler.collectGarbage), so it is the live memory at that moment. The RSS samples (every
 * 20 ms, from /proc) see everything, workerd's own buffers and the other Workers included.
 * The session is ours alone, on the runtime's own inspector and the front Worker's isolate
 * (wrangler's inspector proxy is off: it attached to whichever Worker reloaded last, often a
 * stage Worker, which made earlier figures of this bench unreliable); `--no-inspector`: none.
 * `--gc-trace`: the runtime runs with V8's --trace-gc-verbose (bench/v8-flags), and each row gets
 * the front isolate's live memory after full collections during the burst: collections run
 * inside tasks, where the inspector cannot look.
 * `--snapshot MS`: a heap snapshot MS into each burst (live objects only: V8 collects first),
 * with the chain of objects retaining each ArrayBuffer of 1 MiB or more (bench/heap-snapshot.ts).
 * `--connections keep-alive` reuses connections as Node's fetch does, and meets workerd's
 * keep-alive race (bench/keepalive-race.ts): the resets this bench used to show.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocket } from 'undici';
import { loadFetch, type Connections } from './load-fetch';
import { burstModel, isAdmission503, percentile } from './burst';
import { summarizeBuffers } from './heap-snapshot';
import { busiestIsolate, GC_TRACE_FLAGS, GcTrace, heldAfter, isFull } from './v8-flags/gc-trace';
import { testFormats, testJpegs, type TestJpeg } from './images';
import { CONFIGS, ensureUploaded, pidListeningOn, WranglerDev } from './workerd';
import { ROOT } from '../models/src/paths';

const MiB = 1024 * 1024;

export interface HeapBurstOptions {
  model: string;
  clients: number;
  persistTo?: string;
  workDir?: string;
  /** Admission control's wait; its 503s must come within this plus a little. */
  admissionWaitMs?: number;
  /** false: no inspector connection at all (RSS only), to see what the inspector itself changes. */
  inspector?: boolean;
  /** 'close' (default): a new connection per request (bench/load-fetch.ts says why). */
  connections?: Connections;
  /** Take a heap snapshot this long into each burst and say what holds its large ArrayBuffers. */
  snapshotAfterMs?: number;
  /** Force a full GC before every inspector sample: live memory rather than V8's heap in use. */
  gc?: boolean;
  /** Run the runtime with V8's --trace-gc-verbose and read the memory at each collection (bench/v8-flags). */
  gcTrace?: boolean;
  onProgress?: (line: string) => void;
}

export interface HeapSample {
  atMs: number;
  /** When the answer came (performance.now()): the isolate was between tasks then. */
  answeredAt: number;
  /** V8 heap in use (Runtime.getHeapUsage usedSize). */
  jsUsed: number;
  /** ArrayBuffer backing stores (backingStorageSize; not the wasm memories), when V8 reports it. */
  backing: number | null;
}

export interface HeapBurstRow {
  image: string;
  bytes: number;
  requests: number;
  ok: number;
  admission503: number;
  /** Slowest admission 503, client-observed. */
  admissionMaxMs: number | null;
  /** Median admission 503, client-observed. */
  admissionP50Ms: number | null;
  /** Admission 503s given at arrival, the line ahead predictably outlasting the wait (src/admission). */
  admissionPredicted: number;
  /** Anything but a 200 or an admission 503. */
  other: Array<{ status: number; body: string; ms: number }>;
  p50: number | null;
  /** Largest inspector sample answered during the burst (JS heap + backing stores) + onnxruntime's heap after it; null without one. */
  peakIsolate: number | null;
  /** onnxruntime's wasm heap after the burst (it only grows). */
  wasmHeap: number | null;
  peakJsUsed: number | null;
  /** Runtime process RSS at its highest during the burst, minus the warm baseline. */
  rssGrowth: number | null;
  inspectorSamples: number;
  /** `--snapshot`: live memory (V8 collects first) at one moment of the burst, when it came. */
  snapshot?: { duringBurst: boolean; jsHeapBytes: number; bufferBytes: number; large: Array<{ bytes: number; path: string }> };
  /**
   * `--gc-trace`: the front isolate at V8's collections during the burst, inside tasks
   * (bench/v8-flags/gc-trace.ts). `live`: the most live memory after a full collection (JS heap
   * + ArrayBuffers + wasm); `any`: the most after any collection (a scavenge still counts old
   * garbage); `heapBefore`: the JS heap before one, garbage included; `wasm`: the isolate's wasm
   * memories after the burst (a heap snapshot; they never shrink, so none was larger during it).
   */
  inTask?: { collections: number; full: number; live: number | null; any: number; heapBefore: number; wasm: number };
}

export interface HeapBurstFigure {
  model: string;
  clients: number;
  /** Whether each sample followed a forced full GC (live memory). */
  gc: boolean;
  budgetBytes: number;
  limitBytes: number;
  baseline: { wasmHeap: number | null; isolate: number | null; rss: number | null };
  rows: HeapBurstRow[];
  /** Highest isolate figure over all bursts. */
  peakIsolate: number | null;
}

/** A V8 inspector session on the front Worker, polling Runtime.getHeapUsage. */
class HeapProbe {
  private next = 1;
  private readonly pending = new Map<number, (result: unknown) => void>();
  readonly samples: HeapSample[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private inFlight = false;
  private chunks: string[] = [];

  private constructor(
    private readonly ws: WebSocket,
    private readonly gc: boolean,
  ) {
    ws.addEventListener('message', (e) => {
      const msg = JSON.parse(String(e.data)) as { id?: number; method?: string; params?: { chunk?: string }; result?: { usedSize: number; backingStorageSize?: number }; error?: { message?: string } };
      if (msg.error) console.error(`inspector: ${msg.error.message ?? JSON.stringify(msg.error)}`);
      if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') this.chunks.push(msg.params?.chunk ?? '');
      // workerd ends a heap snapshot by echoing the command, without a `result`.
      if (msg.id !== undefined && (msg.result || msg.method === 'HeapProfiler.takeHeapSnapshot')) this.pending.get(msg.id)?.(msg.result);
      if (msg.id !== undefined) this.pending.delete(msg.id);
    });
  }

  /** On a DevTools WebSocket URL (WranglerDev.runtimeInspector). */
  static async open(url: string, gc = false): Promise<HeapProbe | undefined> {
    // wrangler's proxy refused a client without an Origin it knows; harmless elsewhere.
    const ws = new WebSocket(url, { headers: { Origin: 'http://localhost' } } as ConstructorParameters<typeof WebSocket>[1]);
    const opened = await new Promise<boolean>((resolve) => {
      ws.addEventListener('open', () => resolve(true));
      ws.addEventListener('error', () => resolve(false));
      setTimeout(() => resolve(false), 10_000);
    });
    return opened ? new HeapProbe(ws, gc) : undefined;
  }

  usage(timeoutMs = 30_000): Promise<HeapSample | undefined> {
    const id = this.next++;
    const t0 = performance.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, (result) => {
        const r = result as { usedSize: number; backingStorageSize?: number };
        clearTimeout(timer);
        resolve({ atMs: t0, answeredAt: performance.now(), jsUsed: r.usedSize, backing: r.backingStorageSize ?? null });
      });
      // The inspector answers in order: the collection is done before the usage is read.
      if (this.gc) this.ws.send(JSON.stringify({ id: this.next++, method: 'HeapProfiler.collectGarbage' }));
      this.ws.send(JSON.stringify({ id, method: 'Runtime.getHeapUsage' }));
    });
  }

  /** A heap snapshot (V8 collects garbage first), as its JSON text; undefined on timeout. */
  snapshot(timeoutMs = 60_000): Promise<{ json: string; askedAt: number; answeredAt: number } | undefined> {
    const id = this.next++;
    const askedAt = performance.now();
    this.chunks = [];
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, () => {
        clearTimeout(timer);
        resolve({ json: this.chunks.join(''), askedAt, answeredAt: performance.now() });
      });
      this.ws.send(JSON.stringify({ id: this.next++, method: 'HeapProfiler.enable' }));
      this.ws.send(JSON.stringify({ id, method: 'HeapProfiler.takeHeapSnapshot', params: { reportProgress: false } }));
    });
  }

  /** Polls every `everyMs`, one question in flight at a time (the isolate answers between tasks). */
  start(everyMs: number): void {
    this.timer = setInterval(() => {
      if (this.inFlight) return;
      this.inFlight = true;
      void this.usage().then((s) => {
        this.inFlight = false;
        if (s) this.samples.push(s);
      });
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  close(): void {
    this.stop();
    this.ws.close();
  }
}

/** Resident memory of a process, bytes (Linux). */
async function rssOf(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

async function wasmHeapOf(base: string): Promise<number | null> {
  try {
    const body = (await (await fetch(`${base}/models`, { signal: AbortSignal.timeout(30_000) })).json()) as { isolate?: { wasmHeapBytes?: number } };
    return body.isolate?.wasmHeapBytes ?? null;
  } catch {
    return null;
  }
}

const isolateBytes = (s: HeapSample): number => s.jsUsed + (s.backing ?? 0);
const maxOf = (xs: number[]): number | null => (xs.length ? Math.max(...xs) : null);

async function post(base: string, id: string, image: TestJpeg, connections: Connections): Promise<{ status: number; body: string; retryAfter: string | null; ms: number }> {
  const t0 = performance.now();
  try {
    const res = await loadFetch(`${base}/predict/${id}?topk=1`, { method: 'POST', body: image.bytes, signal: AbortSignal.timeout(120_000) }, connections);
    const body = await res.text();
    return { status: res.status, body: res.status === 200 ? '' : body.slice(0, 300), retryAfter: res.headers.get('retry-after'), ms: performance.now() - t0 };
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return { status: 0, body: `${err instanceof Error ? err.message : String(err)}${cause}`, retryAfter: null, ms: performance.now() - t0 };
  }
}

export async function heapBurst(o: HeapBurstOptions): Promise<HeapBurstFigure> {
  const progress = o.onProgress ?? (() => undefined);
  const persistTo = o.persistTo ?? join(tmpdir(), 'edge-resnet-burst');
  const workDir = o.workDir ?? join(ROOT, 'bench/tmp');
  const { dir, manifest } = await burstModel(o.model, false);
  const id = `${o.model}-heap`;
  await ensureUploaded(persistTo, id, dir, manifest);
  const big = (await testJpegs(workDir)).filter((j) => j.name.startsWith('4032x3024'));
  const images = [...big.map((j) => ({ ...j, name: `${j.name} baseline JPEG` })), ...(await testFormats(workDir))];

  progress(`heap burst: starting wrangler dev (${id})`);
  const dev = await WranglerDev.start(
    CONFIGS.map((c) => join(ROOT, c)),
    persistTo,
    undefined,
    // wrangler's inspector proxy off: it would hold the runtime's one session per isolate, and
    // attach to whichever Worker reloaded last (a stage Worker as often as the front one).
    { inspector: false, ...(o.gcTrace ? { v8Flags: GC_TRACE_FLAGS } : {}) },
  );
  const trace = o.gcTrace ? new GcTrace() : undefined;
  if (trace) dev.onOutput((text) => trace.feed(text));
  let probe: HeapProbe | undefined;
  try {
    const base = dev.runtimeBase;
    const pid = await pidListeningOn(Number(new URL(base).port));
    if (o.inspector !== false) {
      const url = await dev.runtimeInspector('edge-resnet');
      probe = url ? await HeapProbe.open(url, o.gc ?? false) : undefined;
      if (!probe) progress('heap burst: the inspector did not open; V8 figures are missing');
    }
    // Warm: the model loaded, every decoder used once.
    for (const image of images) {
      const r = await post(base, id, image, o.connections ?? 'close');
      if (r.status !== 200) throw new Error(`warm-up ${image.name}: HTTP ${r.status}: ${r.body}`);
    }
    const baseSamples: HeapSample[] = [];
    const baseRss: number[] = [];
    for (let i = 0; i < 5; i++) {
      const s = await probe?.usage();
      if (s) baseSamples.push(s);
      const r = await rssOf(pid);
      if (r !== null) baseRss.push(r);
      await new Promise((res) => setTimeout(res, 200));
    }
    const baseWasm = await wasmHeapOf(base);
    const baseJs = maxOf(baseSamples.map(isolateBytes));
    const baseline = {
      wasmHeap: baseWasm,
      isolate: baseJs === null ? null : baseJs + (baseWasm ?? 0),
      rss: baseRss.length ? (percentile(baseRss, 50) ?? null) : null,
    };
    progress(`heap burst: warm baseline: wasm heap ${mb(baseline.wasmHeap)}, isolate ${mb(baseline.isolate)}, runtime RSS ${mb(baseline.rss)}`);

    const rows: HeapBurstRow[] = [];
    for (const image of images) {
      const before = probe?.samples.length ?? 0;
      probe?.start(20);
      const rss: number[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const r = await rssOf(pid);
          if (r !== null) rss.push(r);
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      const traceMark = trace?.events.length ?? 0;
      const burstStart = performance.now();
      let lastAnswer = burstStart;
      const snapshot = o.snapshotAfterMs !== undefined && probe ? new Promise((r) => setTimeout(r, o.snapshotAfterMs)).then(() => probe!.snapshot()) : undefined;
      const answers = await Promise.all(
        Array.from({ length: o.clients }, () =>
          post(base, id, image, o.connections ?? 'close').then((a) => {
            lastAnswer = performance.now();
            return a;
          }),
        ),
      );
      sampling = false;
      await sampler;
      probe?.stop();
      const snap = await snapshot;
      if (snapshot && !snap) progress(`heap burst: ${image.name}: the heap snapshot did not come`);
      let summary: ReturnType<typeof summarizeBuffers> | undefined;
      if (snap) {
        summary = summarizeBuffers(snap.json);
        const when = snap.answeredAt < lastAnswer ? 'during the burst' : 'after the last answer';
        progress(
          `heap burst: ${image.name}: snapshot asked at ${Math.round(snap.askedAt - burstStart)} ms, taken ${when} (${Math.round(snap.answeredAt - burstStart)} ms): ` +
            `JS heap ${mb(summary.jsHeapBytes)}, ${summary.count} ArrayBuffers holding ${mb(summary.totalBytes)}; the large ones:\n` +
            summary.large.slice(0, 12).map((b) => `  ${mb(b.bytes)} ${b.path}`).join('\n'),
        );
      }
      // Only what the isolate answered while the burst's requests were in flight says anything
      // about the burst: it answers the inspector between tasks, and under a burst its thread
      // rarely gets there (README, "Holding up under load").
      const samples = (probe?.samples.slice(before) ?? []).filter((x) => x.answeredAt > burstStart && x.answeredAt < lastAnswer);
      const inTask = trace && probe ? await inTaskMemory(trace, traceMark, probe) : undefined;
      if (trace && !inTask) progress(`heap burst: ${image.name}: no collection in the GC trace, or no heap snapshot after the burst`);
      const wasmHeap = await wasmHeapOf(base);
      const peakJs = maxOf(samples.map(isolateBytes));
      const admission = answers.filter((a) => isAdmission503({ status: a.status, body: a.body, retryAfter: a.retryAfter }));
      const row: HeapBurstRow = {
        image: image.name,
        bytes: image.bytes.byteLength,
        requests: answers.length,
        ok: answers.filter((a) => a.status === 200).length,
        admission503: admission.length,
        admissionMaxMs: admission.length ? Math.round(Math.max(...admission.map((a) => a.ms))) : null,
        admissionP50Ms: percentile(admission.map((a) => Math.round(a.ms)), 50),
        admissionPredicted: admission.filter((a) => /at recent rates/.test(a.body)).length,
        other: answers.filter((a) => a.status !== 200 && !admission.includes(a)).map((a) => ({ status: a.status, body: a.body, ms: Math.round(a.ms) })),
        p50: percentile(answers.filter((a) => a.status === 200).map((a) => Math.round(a.ms)), 50),
        peakIsolate: peakJs === null ? null : peakJs + (wasmHeap ?? 0),
        wasmHeap,
        peakJsUsed: maxOf(samples.map((s) => s.jsUsed)),
        rssGrowth: rss.length && baseline.rss !== null ? Math.max(...rss) - baseline.rss : null,
        inspectorSamples: samples.length,
        ...(snap && summary
          ? { snapshot: { duringBurst: snap.answeredAt < lastAnswer, jsHeapBytes: summary.jsHeapBytes, bufferBytes: summary.totalBytes, large: summary.large.slice(0, 12) } }
          : {}),
        ...(inTask ? { inTask } : {}),
      };
      rows.push(row);
      progress(`heap burst: ${describeHeapRow(row)}`);
    }
    const budgetMB = Number(/MEMORY_BUDGET_MB = "(\d+)"/.exec(await readFile(join(ROOT, 'wrangler.toml'), 'utf8'))?.[1] ?? 116);
    return {
      model: `${o.model} int8${manifest.weights === 'synthetic' ? ' (synthetic weights)' : ''}`,
      clients: o.clients,
      gc: o.gc ?? false,
      budgetBytes: budgetMB * MiB,
      limitBytes: 128 * 1000 * 1000,
      baseline,
      rows,
      peakIsolate: maxOf(rows.map((r) => r.peakIsolate).filter((x): x is number => x !== null)),
    };
  } finally {
    probe?.close();
    await dev.stop();
  }
}

/**
 * The front isolate's memory at V8's collections since `mark`, with the wasm memories it has
 * after them (a heap snapshot's buffers held by a WebAssembly.Memory).
 */
async function inTaskMemory(trace: GcTrace, mark: number, probe: HeapProbe): Promise<HeapBurstRow['inTask'] | undefined> {
  // Stop reading events before the snapshot's own collection adds one.
  const events = trace.since(mark);
  const snap = await probe.snapshot();
  const front = busiestIsolate(events);
  if (!snap || !front) return undefined;
  const mine = events.filter((e) => e.isolate === front);
  const wasm = summarizeBuffers(snap.json).wasmBytes;
  const full = mine.filter(isFull);
  return {
    collections: mine.length,
    full: full.length,
    live: full.length ? Math.max(...full.map(heldAfter)) + wasm : null,
    any: Math.max(...mine.map(heldAfter)) + wasm,
    heapBefore: Math.max(...mine.map((e) => e.heapBefore)),
    wasm,
  };
}

const mb = (b: number | null): string => (b === null ? 'n/a' : `${(b / MiB).toFixed(1)} MiB`);
const admissionDetail = (r: HeapBurstRow): string =>
  `median ${r.admissionP50Ms} ms, slowest ${r.admissionMaxMs} ms; ${r.admissionPredicted ?? 0} at arrival`;

export function describeHeapRow(r: HeapBurstRow): string {
  return (
    `${r.image}: ${r.requests} at once: ${r.ok} x 200, ${r.admission503} admission 503` +
    (r.admissionMaxMs !== null ? ` (${admissionDetail(r)})` : '') +
    `, ${r.other.length} other${r.other.length ? ` (${r.other.map((x) => `${x.status} after ${x.ms} ms: ${x.body.slice(0, 60)}`).join('; ')})` : ''}; ` +
    `peak isolate ${mb(r.peakIsolate)} (JS heap ${mb(r.peakJsUsed)}; ${r.inspectorSamples} samples), runtime RSS +${mb(r.rssGrowth)}` +
    (r.inTask ? `; at collections: ${inTaskDetail(r.inTask)}` : '')
  );
}

const inTaskDetail = (t: NonNullable<HeapBurstRow['inTask']>): string =>
  `live after a full one ${mb(t.live)}, after any ${mb(t.any)} (wasm ${mb(t.wasm)} of it; ${t.collections} collections, ${t.full} full; JS heap before one, at most ${mb(t.heapBefore)})`;

/** Live memory in a row's heap snapshot (JS heap + every ArrayBuffer, onnxruntime's memory included). */
const liveOf = (r: HeapBurstRow): number | null => (r.snapshot?.duringBurst ? r.snapshot.jsHeapBytes + r.snapshot.bufferBytes : null);

export function renderHeapBurst(f: HeapBurstFigure): string {
  const heapInUse = f.gc ? 'right after a forced full GC' : 'garbage included: an upper bound';
  const lines = [
    `Burst of ${f.clients} concurrent 12 MP uploads per format, ${f.model}, warm isolate; budget MEMORY_BUDGET_MB = ${mb(f.budgetBytes)}; limit 128 MB.`,
    `Live: a heap snapshot taken during the burst (V8 collects first; --snapshot). Heap in use: the largest inspector sample of V8's heap + ArrayBuffer backing stores (${heapInUse}) + onnxruntime's heap. Both are taken between tasks only.`,
    `At collections (--gc-trace): inside tasks, from V8's --trace-gc-verbose: the most live memory after any full collection during the burst (JS heap + ArrayBuffers + the isolate's wasm memories), and the most after any collection (a scavenge still counts old garbage).`,
    '',
    `Warm baseline: onnxruntime heap ${mb(f.baseline.wasmHeap)}, isolate ${mb(f.baseline.isolate)}, runtime RSS ${mb(f.baseline.rss)}.`,
    '',
    '| image | bytes | 200 | admission 503 (median, slowest; refused at arrival) | other | p50 ms (200s) | live (snapshot) | heap in use (samples) | in tasks: live at full collections (count) | in tasks: after any collection (count) | runtime RSS growth |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...f.rows.map((r) => {
      const live = liveOf(r);
      return `| ${r.image} | ${(r.bytes / 1e6).toFixed(1)} MB | ${r.ok} | ${r.admission503}${r.admissionMaxMs !== null ? ` (${admissionDetail(r)})` : ''} | ${r.other.length} | ${r.p50 ?? 'n/a'} | ${live === null ? 'n/a' : `${mb(live)}${live > f.budgetBytes ? ' **over budget**' : ''}`} | ${mb(r.peakIsolate)} (${r.inspectorSamples}) | ${r.inTask ? `${mb(r.inTask.live)}${(r.inTask.live ?? 0) > f.budgetBytes ? ' **over budget**' : ''} (${r.inTask.full})` : 'n/a'} | ${r.inTask ? `${mb(r.inTask.any)} (${r.inTask.collections})` : 'n/a'} | ${mb(r.rssGrowth)} |`;
    }),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'resnet50v1' },
      clients: { type: 'string', default: '16' },
      json: { type: 'string' },
      gc: { type: 'boolean', default: false },
      'no-inspector': { type: 'boolean', default: false },
      connections: { type: 'string', default: 'close' },
      snapshot: { type: 'string' },
      'gc-trace': { type: 'boolean', default: false },
    },
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void Promise.all([...WranglerDev.live].map((d) => d.stop())).then(() => process.exit(130)));
  }
  const figure = await heapBurst({ model: values.model, clients: Number(values.clients), gc: values.gc, gcTrace: values['gc-trace'], inspector: !values['no-inspector'], connections: values.connections === 'close' ? 'close' : 'keep-alive', ...(values.snapshot ? { snapshotAfterMs: Number(values.snapshot) } : {}), onProgress: (l) => console.error(l) });
  console.log(renderHeapBurst(figure));
  if (values.json) await writeFile(values.json, `${JSON.stringify(figure, null, 2)}\n`);
  // Heap in use counts garbage, so only live memory over the budget fails the run: in a
  // snapshot, or after a full collection inside a task.
  const failed = figure.rows.some((r) => r.other.length > 0 || (liveOf(r) ?? 0) > figure.budgetBytes || (r.inTask?.live ?? 0) > figure.budgetBytes);
  process.exitCode = failed ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}

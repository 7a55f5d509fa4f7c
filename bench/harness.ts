/**
 * The benchmark: every figure of bench/report.md measured in one run (nothing is carried over
 * from earlier runs except built models and test JPEGs, which are inputs, not measurements).
 *
 * Order matters on a 2-core machine: the Node-only figures run first, each runtime in its own
 * process, and wrangler dev only runs while the Worker is being measured.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { loadKernel } from '../models/src/kernel';
import { calibrationTensors, testFormats, testJpegs, workerTensor, type TestJpeg } from './images';
import { ensureModels, label, message, servedId, type BuiltModel } from './models';
import { measureNodeStages } from './node-stages';
import { NodeRuntimeProcess, type ChildCold, type ChildEnd, type NodeRuntime } from './node-runtimes';
import { BLOCK, type BenchOptions } from './options';
import { coldBurst, type ColdBurstFigure } from './burst';
import { measureSplit } from './split';
import { evaluateTargets, MEMORY_LIMIT_BYTES, PRICES, renderMarkdown, renderSummary } from './report';
import { median, summarize, type Summary } from './stats';
import type { BenchReport, SplitFigure, ColdSample, EndToEnd, ModelResult, NodeRuntimeResult, SizeResult, ThroughputResult } from './types';
import { ensureUploaded, snapshotWorkers, stagesOf, throughput, WranglerDev, type Sample, type Stages, type WorkerConfigs } from './workerd';
import { ROOT } from '../models/src/paths';

export const CONCURRENCY = [1, 4, 16] as const;
/** The image of the inference figure, the cold path, the throughput test and the cost line. */
const SMALL = '640x480';

export interface BenchResult {
  report: BenchReport;
  markdownPath: string;
  jsonPath: string;
  summary: string;
}

export async function runBenchmark(o: BenchOptions): Promise<BenchResult> {
  const started = performance.now();
  const progress = o.onProgress ?? (() => undefined);
  await mkdir(o.workDir, { recursive: true });
  await mkdir(o.outDir, { recursive: true });
  await mkdir(o.persistTo, { recursive: true });

  progress('worker: bundle snapshot (wrangler deploy --dry-run)');
  const code = codeState();
  // Per process: a quick test run and a full run may overlap, and each serves its own bundle.
  const snapshotDir = join(o.workDir, `worker-${process.pid}`);
  try {
    const workers = await snapshotWorkers(snapshotDir);
    return await measureAll(o, started, code, workers, progress);
  } finally {
    await rm(snapshotDir, { recursive: true, force: true });
  }
}

async function measureAll(o: BenchOptions, started: number, code: string, workers: WorkerConfigs, progress: (line: string) => void): Promise<BenchResult> {

  const kernel = loadKernel();
  progress('inputs: test JPEGs (640x480, 1920x1080, 4032x3024 from test/fixtures/photos)');
  const jpegs = await testJpegs(o.workDir);
  const small = jpegs.find((j) => j.name === SMALL)!;
  // The input every runtime gets: the small JPEG decoded and preprocessed as the Worker does it.
  const smallTensor = await workerTensor(kernel, small.bytes);
  const inputPath = join(o.workDir, `input-${SMALL}.f32`);
  await writeFile(inputPath, new Uint8Array(smallTensor.buffer));

  progress('models: synthesize + quantize (cached by recipe)');
  const { built, failures } = await ensureModels(join(o.workDir, 'models'), o.models, () => calibrationTensors(kernel), progress);

  progress('figure 3: kernel vs reference, JPEG decode (Node)');
  const nodeStages = measureNodeStages(kernel, jpegs, o.iterations, Math.min(o.warmup, 5));

  const primary = choosePrimary(built);
  let endToEnd: EndToEnd | null = null;
  const results = new Map<BuiltModel, ModelResult>(built.map((m) => [m, emptyResult(m)]));
  for (const m of built) {
    try {
      progress(`${label(m.spec)}: upload to local R2 (${o.persistTo})`);
      await ensureUploaded(o.persistTo, servedId(m.spec), m.dir, m.manifest);
    } catch (err) {
      results.get(m)!.errors.push(`upload: ${message(err)}`);
    }
  }
  for (const id of [...new Set(built.map((m) => m.spec.id))]) {
    const group = built.filter((m) => m.spec.id === id).map((m) => ({ m, r: results.get(m)! }));
    const e2e = await measureGroup(o, workers.front, group, inputPath, small, primary, jpegs, progress);
    endToEnd = e2e ?? endToEnd;
  }
  const models = built.map((m) => results.get(m)!);
  models.forEach(finish);

  let split: SplitFigure | null = null;
  if (o.split) {
    const spec = { id: o.split.id, variant: 'int8' as const };
    const whole = built.find((m) => m.spec.id === spec.id && m.spec.variant === 'int8') ?? (await ensureModels(join(o.workDir, 'models'), [spec], () => calibrationTensors(kernel), progress)).built[0];
    if (!whole) failures.push({ spec, stage: 'quantize', error: `figure 6: ${spec.id} int8 could not be built` });
    else split = await measureSplit(o, workers, whole, o.split.stages, small.bytes, progress);
  }

  let coldBursts: ColdBurstFigure[] | null = null;
  if (o.burstRounds > 0) {
    coldBursts = [];
    // The bursts: 16 clients x 20 s of a 768x576 JPEG right after a fresh wrangler dev,
    // on npm start's default model whole and on a deep one split, sent to the runtime (bench/burst.ts).
    for (const [model, split] of [['resnet18v1', false], ['resnet101v1', true]] as const) {
      progress(`figure 7: cold bursts, ${model} ${split ? 'split' : 'whole'}, ${o.burstRounds} rounds`);
      try {
        coldBursts.push(await coldBurst({ model, split, clients: 16, seconds: 20, rounds: o.burstRounds, persistTo: o.persistTo, onProgress: progress }));
      } catch (err) {
        failures.push({ spec: { id: model, variant: 'int8' }, stage: 'cold burst', error: message(err) });
      }
    }
  }

  const report: BenchReport = {
    meta: {
      date: new Date().toISOString(),
      machine: {
        cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
        cpus: cpus().length,
        memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
        os: `${type()} ${release()}`,
        node: process.version,
      },
      versions: versions(),
      code,
      command: o.command,
      quick: o.quick,
      iterations: o.iterations,
      warmup: o.warmup,
      coldRuns: o.coldRuns,
      throughputRequests: o.throughputRequests,
      durationS: (performance.now() - started) / 1000,
    },
    prices: PRICES,
    memoryLimitBytes: MEMORY_LIMIT_BYTES,
    models,
    failures: failures.map((f) => ({ model: label(f.spec), stage: f.stage, error: f.error })),
    endToEnd,
    nodeStages,
    split,
    coldBursts,
    targets: [],
  };
  report.targets = evaluateTargets(report);
  const markdownPath = join(o.outDir, 'report.md');
  const jsonPath = join(o.outDir, 'report.json');
  await writeFile(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(markdownPath, renderMarkdown(report));
  return { report, markdownPath, jsonPath, summary: renderSummary(report) };
}

function emptyResult(m: BuiltModel): ModelResult {
  return {
    label: label(m.spec),
    id: m.spec.id,
    variant: m.spec.variant,
    servedId: servedId(m.spec),
    precision: m.manifest.precision,
    disablePrepacking: m.manifest.session?.disablePrepacking === true,
    fileBytes: m.manifest.bytes,
    build: { cached: m.cached, ms: m.buildMs },
    ratios: { workerdOverOrtWeb: null, workerdOverOrtNode: null },
    top1Agrees: null,
    cost: null,
    proxyResets: 0,
    errors: [],
  };
}

/** The model of the end-to-end figure: ResNet-50 int8 (the production candidate) when present. */
function choosePrimary(built: readonly BuiltModel[]): BuiltModel | undefined {
  const score = (m: BuiltModel): number => (m.spec.variant === 'int8' ? 1000 : 0) + (m.spec.id === 'resnet50v1' ? 500 : 0) + Number(/\d+/.exec(m.spec.id)?.[0] ?? 0);
  return [...built].sort((a, b) => score(b) - score(a))[0];
}

function finish(r: ModelResult): void {
  const w = r.workerd;
  if (w && r.ortWeb) r.ratios.workerdOverOrtWeb = w.warmInference.median / r.ortWeb.warm.median;
  if (w && r.ortNode) r.ratios.workerdOverOrtNode = w.warmInference.median / r.ortNode.warm.median;
  const tops = [w?.top1, r.ortWeb?.top1, r.ortNode?.top1].filter((t): t is number => t !== undefined && t !== null);
  if (tops.length >= 2) r.top1Agrees = tops.every((t) => t === tops[0]);
  if (w) r.cost = { cpuMsPerImage: w.warmServerTotal.median, usdPerMillion: usdPerMillion(w.warmServerTotal.median) };
}

/** CPU ms per image x price per CPU-ms x a million images. */
export const usdPerMillion = (cpuMs: number): number => cpuMs * PRICES.workersUsdPerMillionCpuMs;

interface Lane {
  m: BuiltModel;
  r: ModelResult;
  name: string;
  id: string;
  cold: ColdSample[];
  /** The fresh isolate kept for the warm figures (the last cold one). */
  dev?: WranglerDev;
  series: number[];
  warm: Sample[];
  node: Map<NodeRuntime, { process: NodeRuntimeProcess; cold: ChildCold; warm: number[] }>;
}

/**
 * Every variant of one zoo model (int8 and fp32): the cold path in fresh isolates, then the
 * warm figures with everything taking turns in blocks — each variant's own wrangler dev,
 * onnxruntime-web and onnxruntime-node processes, all alive, only one working at a time — so
 * that the machine's background load falls on all of them alike and both the runtime ratios
 * and the int8/fp32 ratio compare like with like. Failures go to each model's `errors`; what
 * could be measured is kept.
 */
async function measureGroup(
  o: BenchOptions,
  workerConfig: string,
  group: ReadonlyArray<{ m: BuiltModel; r: ModelResult }>,
  inputPath: string,
  small: TestJpeg,
  primary: BuiltModel | undefined,
  jpegs: readonly TestJpeg[],
  progress: (line: string) => void,
): Promise<EndToEnd | null> {
  const lanes: Lane[] = group.map(({ m, r }) => ({ m, r, name: label(m.spec), id: servedId(m.spec), cold: [], series: [], warm: [], node: new Map() }));
  const fail = async (lane: Lane, what: string, err: unknown): Promise<void> => {
    lane.r.errors.push(`${what}: ${message(err)}`);
    if (lane.dev) {
      progress(`${lane.name}: wrangler dev log tail:\n${lane.dev.tail(1500)}`);
      await lane.dev.stop();
      delete lane.dev;
    }
  };
  let endToEnd: EndToEnd | null = null;
  try {
    for (const lane of lanes) {
      try {
        for (let run = 1; run <= o.coldRuns; run++) {
          progress(`${lane.name}: workerd cold path ${run}/${o.coldRuns} (fresh wrangler dev)`);
          lane.dev = await WranglerDev.start(workerConfig, o.persistTo);
          // Never retried: a second attempt would not be cold.
          const first = await lane.dev.predict(lane.id, small.bytes);
          const stages = stagesOf(first, `${lane.name} cold request`);
          lane.cold.push({ readyMs: lane.dev.readyMs, clientMs: first.clientMs, stages, top1: first.top1 ?? null });
          if (run < o.coldRuns) {
            await lane.dev.stop();
            delete lane.dev;
          } else {
            lane.series.push(stages.inference);
          }
        }
        progress(`${lane.name}: workerd warm-up, ${o.warmup} requests (${SMALL})`);
        for (let i = 0; i < o.warmup; i++) {
          const s = await lane.dev!.predictRetrying(lane.id, small.bytes);
          lane.series.push(stagesOf(s, `${lane.name} warm-up request ${i + 1}`).inference);
          lane.r.proxyResets += s.proxyResets;
        }
      } catch (err) {
        await fail(lane, 'workerd', err);
      }
      for (const runtime of ['ort-web', 'ort-node'] as const) {
        progress(`${lane.name}: ${runtime} in Node (fresh process, 1 thread): cold path and ${o.warmup} warm-up runs`);
        try {
          const started = await NodeRuntimeProcess.start(runtime, join(lane.m.dir, 'model.onnx'), inputPath, o.warmup, lane.r.disablePrepacking);
          lane.node.set(runtime, { ...started, warm: [] });
        } catch (err) {
          lane.r.errors.push(`${runtime}: ${message(err)}`);
        }
      }
    }

    progress(`${lanes.map((l) => l.name).join(' + ')}: warm, ${o.iterations} each of workerd requests, ort-web runs and ort-node runs, taking turns in blocks of ${BLOCK}`);
    for (let done = 0; done < o.iterations; done += BLOCK) {
      const n = Math.min(BLOCK, o.iterations - done);
      for (const lane of lanes) {
        if (lane.dev) {
          try {
            for (let i = 0; i < n; i++) {
              const s = await lane.dev.predictRetrying(lane.id, small.bytes);
              lane.series.push(stagesOf(s, `${lane.name} warm request`).inference);
              lane.r.proxyResets += s.proxyResets;
              lane.warm.push(s);
            }
          } catch (err) {
            await fail(lane, 'workerd', err);
          }
        }
        for (const [runtime, child] of lane.node) {
          try {
            child.warm.push(...(await child.process.run(n)));
          } catch (err) {
            lane.r.errors.push(`${runtime}: ${message(err)}`);
            child.process.kill();
            lane.node.delete(runtime);
          }
        }
      }
    }

    for (const lane of lanes) {
      for (const [runtime, child] of lane.node) {
        try {
          recordNode(lane.r, runtime, child.cold, child.warm, await child.process.end());
        } catch (err) {
          lane.r.errors.push(`${runtime}: ${message(err)}`);
        }
        child.process.kill();
      }
      lane.node.clear();
      if (lane.dev && lane.warm.length > 0) {
        const warmInference = summarize(lane.warm.map((s) => s.stages!.inference));
        lane.r.workerd = {
          cold: lane.cold,
          coldClient: summarize(lane.cold.map((c) => c.clientMs)),
          coldModel: summarize(lane.cold.map((c) => c.stages.model)),
          coldInference: summarize(lane.cold.map((c) => c.stages.inference)),
          series: lane.series,
          settledAt: settledAt(lane.series, warmInference.median),
          warmInference,
          warmServerTotal: summarize(lane.warm.map((s) => s.stages!.total)),
          warmClient: summarize(lane.warm.map((s) => s.clientMs)),
          top1: lane.cold[lane.cold.length - 1]?.top1 ?? null,
        };
      }
    }

    // Only the end-to-end model's isolate works from here on; the others would sit idle.
    for (const lane of lanes) {
      if (lane.m !== primary && lane.dev) {
        await lane.dev.stop();
        delete lane.dev;
      }
    }
    const main = lanes.find((l) => l.m === primary && l.dev);
    if (main) {
      try {
        // Full runs add the 12 MP progressive JPEG, PNG and lossy WebP rows (the quick run keeps CI short).
        const uploads = o.quick ? jpegs : [...jpegs, ...(await testFormats(o.workDir))];
        endToEnd = await measureEndToEnd(o, main.dev!, main.m, uploads, small, progress);
      } catch (err) {
        await fail(main, 'end to end', err);
      }
    }
  } finally {
    for (const lane of lanes) {
      for (const child of lane.node.values()) child.process.kill();
      await lane.dev?.stop();
    }
  }
  return endToEnd;
}

function recordNode(r: ModelResult, runtime: NodeRuntime, cold: ChildCold, warm: number[], end: ChildEnd): void {
  const summary: NodeRuntimeResult = {
    importMs: cold.importMs,
    createMs: cold.createMs,
    firstRunMs: cold.firstRunMs,
    coldMs: cold.createMs + cold.firstRunMs,
    warm: summarize(warm),
    top1: cold.top1,
  };
  if (runtime === 'ort-node') {
    r.ortNode = summary;
    return;
  }
  r.ortWeb = summary;
  const mem = cold.memory;
  if (!mem) return;
  const jsHeapDelta = Math.max(mem.jsHeapDeltaAfterCreate, mem.jsHeapDeltaAfterRun);
  const total = end.wasmHeapPeak + Math.max(0, jsHeapDelta);
  r.memory = {
    wasmHeapAfterCreate: mem.wasmHeapAfterCreate,
    wasmHeapAfterRun: mem.wasmHeapAfterRun,
    wasmHeapPeak: end.wasmHeapPeak,
    jsHeapDelta,
    total,
    fits: total <= MEMORY_LIMIT_BYTES,
  };
}

/**
 * First request k whose window k..k+4 has a median within 1.15x of the warm median: where the
 * tier-up trend ends, without one late outlier (the machine is shared) moving it to the end.
 */
function settledAt(series: readonly number[], warmMedian: number): number | null {
  const window = 5;
  for (let k = 0; k + window <= series.length; k++) {
    if (median(series.slice(k, k + window)) <= 1.15 * warmMedian) return k + 1;
  }
  return null;
}

async function measureEndToEnd(
  o: BenchOptions,
  dev: WranglerDev,
  m: BuiltModel,
  jpegs: readonly TestJpeg[],
  small: TestJpeg,
  progress: (line: string) => void,
): Promise<EndToEnd> {
  const id = servedId(m.spec);
  // The JPEG decoder's JS is compiled per code path; a few requests per size settle it.
  const warmupPerSize = o.quick ? 1 : 3;
  for (const jpeg of jpegs) {
    for (let i = 0; i < warmupPerSize; i++) stagesOf(await dev.predictRetrying(id, jpeg.bytes), `${jpeg.name} warm-up`);
  }
  // Sizes take turns in blocks, so that background load cannot favour one of them (T4 is a ratio).
  progress(`${label(m.spec)}: end to end ${jpegs.map((j) => j.name).join(', ')}: ${warmupPerSize} warm-up + ${o.iterations} requests each, in turns of ${BLOCK}`);
  const perSize = jpegs.map((): Sample[] => []);
  for (let done = 0; done < o.iterations; done += BLOCK) {
    for (const [k, jpeg] of jpegs.entries()) {
      for (let i = 0; i < Math.min(BLOCK, o.iterations - done); i++) perSize[k]!.push(await dev.predictRetrying(id, jpeg.bytes));
    }
  }
  const sizes: SizeResult[] = [];
  for (const [k, jpeg] of jpegs.entries()) {
    const samples = perSize[k]!;
    const ok = samples.filter((s) => s.status === 200 && s.stages);
    if (ok.length === 0) throw new Error(`${jpeg.name}: every request failed: ${samples[0]?.error ?? ''}`);
    const pick = (f: (s: Stages) => number): Summary => summarize(ok.map((s) => f(s.stages!)));
    const client = summarize(ok.map((s) => s.clientMs));
    const decode = pick((s) => s.decode);
    const preprocess = pick((s) => s.preprocess);
    const inference = pick((s) => s.inference);
    const serverTotal = pick((s) => s.total);
    const stagesMedian = summarize(ok.map((s) => s.stages!.model + s.stages!.decode + s.stages!.preprocess + s.stages!.inference)).median;
    sizes.push({
      image: jpeg.name,
      bytes: jpeg.bytes.byteLength,
      client,
      decode,
      preprocess,
      inference,
      serverTotal,
      rest: summarize(ok.map((s) => s.clientMs - (s.stages!.model + s.stages!.decode + s.stages!.preprocess + s.stages!.inference))).median,
      restServer: serverTotal.median - stagesMedian,
      restTransport: summarize(ok.map((s) => s.clientMs - s.stages!.total)).median,
      cpuMsPerImage: serverTotal.median,
      usdPerMillion: usdPerMillion(serverTotal.median),
      errors: samples.length - ok.length,
      proxyResets: samples.reduce((a, x) => a + x.proxyResets, 0),
    });
  }
  const tp: ThroughputResult[] = [];
  for (const concurrency of CONCURRENCY) {
    const requests = Math.max(o.throughputRequests, (o.quick ? 1 : 2) * concurrency);
    progress(`${label(m.spec)}: throughput at concurrency ${concurrency}, ${requests} requests (${small.name})`);
    const { samples, wallMs } = await throughput(() => dev.predictRetrying(id, small.bytes), requests, concurrency);
    const ok = samples.filter((s) => s.status === 200);
    const failed = samples.filter((s) => s.status !== 200);
    tp.push({
      concurrency,
      requests,
      ok: ok.length,
      errors: failed.length,
      errorSamples: [...new Set(failed.map((s) => `HTTP ${s.status}: ${s.error ?? ''}`.slice(0, 200)))].slice(0, 3),
      proxyResets: samples.reduce((a, x) => a + x.proxyResets, 0),
      // A warm isolate answers `model` in ~0 ms; a session load here would mean the isolate restarted.
      sessionLoads: ok.filter((s) => (s.stages?.model ?? 0) > 1).length,
      wallMs,
      imagesPerSecond: ok.length / (wallMs / 1000),
      client: ok.length > 0 ? summarize(ok.map((s) => s.clientMs)) : null,
    });
  }
  return { model: label(m.spec), warmupPerSize, sizes, throughputImage: small.name, throughput: tp };
}

function versions(): Record<string, string> {
  const read = (rel: string): string => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, rel, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  // wrangler runs the workerd it depends on, which may differ from the test pool's top-level one.
  const nested = read('node_modules/wrangler/node_modules/workerd');
  return {
    wrangler: read('node_modules/wrangler'),
    workerd: nested !== 'unknown' ? nested : read('node_modules/workerd'),
    'onnxruntime-web': read('node_modules/onnxruntime-web'),
    'onnxruntime-node': read('node_modules/onnxruntime-node'),
    'jpeg-js': read('node_modules/jpeg-js'),
  };
}

/** Which code was measured: the commit and how many files differed from it when the bundle was made. */
function codeState(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean).length;
    return dirty ? `${head} + ${dirty} uncommitted file(s)` : head;
  } catch {
    return 'unknown (no git)';
  }
}

/**
 * Targets of the issue ("Performance: a benchmark that tells the truth") and the rendering of
 * bench/report.md. Every number shown comes from the BenchReport of the same run.
 */
import { renderFigure } from './burst';
import { median, type Summary } from './stats';
import type { BenchReport, ModelResult, SplitFigure, Target } from './types';
import { BLOCK } from './options';

/**
 * Published prices, checked by hand; the user may check them again:
 * - Workers Standard usage model: $0.02 per additional million CPU milliseconds and $0.30 per
 *   additional million requests (https://developers.cloudflare.com/workers/platform/pricing/).
 * - Workers AI @cf/microsoft/resnet-50: $2.51 per million images
 *   (https://developers.cloudflare.com/workers-ai/platform/pricing/).
 * The cost figures use the CPU price only, as the issue asks; the request fee is shown beside it.
 */
export const PRICES = {
  workersUsdPerMillionCpuMs: 0.02,
  workersUsdPerMillionRequests: 0.3,
  workersAiResnet50UsdPerMillionImages: 2.51,
  sources: ['https://developers.cloudflare.com/workers/platform/pricing/', 'https://developers.cloudflare.com/workers-ai/platform/pricing/'],
};

/** Workers' isolate limit, "128 MB" in Cloudflare's docs, taken as 128 MiB. */
export const MEMORY_LIMIT_BYTES = 128 * 2 ** 20;

const TARGET_RATIO_ORT_WEB = 1.15;
const TARGET_INT8_SPEEDUP = 2;
const TARGET_OVERHEAD_SHARE = 0.25;
const TARGET_12MP_RATIO = 2;
const TARGET_COLD_MS = 1500;

const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const ratio = (x: number | null): string => (x === null ? 'n/a' : `${x.toFixed(2)}x`);
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(bytes < 1e6 ? 2 : 1)} MB`;
const usd = (x: number): string => `$${x.toFixed(2)}`;
const medP95 = (s: Summary | null | undefined): string => (s ? `${ms(s.median)} / ${ms(s.p95)}` : 'n/a');
const pct = (x: number): string => `${(x * 100).toFixed(Math.abs(x) < 0.1 ? 1 : 0)}%`;

/** `strict`: the goal itself is a miss (targets phrased "< x"). */
function judge(value: number, goal: number, direction: 'max' | 'min', unit: (x: number) => string, strict = false): Pick<Target, 'status' | 'detail'> {
  const pass = direction === 'max' ? (strict ? value < goal : value <= goal) : value >= goal;
  if (direction === 'max') {
    return pass
      ? { status: 'PASS', detail: `${unit(value)} ${strict ? '<' : '<='} ${unit(goal)} (${pct(1 - value / goal)} under)` }
      : { status: 'MISS', detail: `${unit(value)} ${strict ? '>=' : '>'} ${unit(goal)}: over by ${pct(value / goal - 1)}` };
  }
  return pass
    ? { status: 'PASS', detail: `${unit(value)} >= ${unit(goal)} (${pct(value / goal - 1)} above)` }
    : { status: 'MISS', detail: `${unit(value)} < ${unit(goal)}: short by ${pct(1 - value / goal)} (needs ${unit(goal / value)} more)` };
}

const notMeasured = (id: string, goal: string, why: string): Target => ({ id, goal, measured: why, value: null, status: 'NOT MEASURED', detail: why });

/**
 * The model for targets about "ResNet-50 int8": that one when measured, else a stand-in that
 * the target line names (quick runs have ResNet-18 only).
 */
function resnet50Int8(r: BenchReport, has: (m: ModelResult) => boolean): { model: ModelResult; note: string } | undefined {
  const exact = r.models.find((m) => m.id === 'resnet50v1' && m.variant === 'int8' && has(m));
  if (exact) return { model: exact, note: exact.label };
  const stand = r.models.find((m) => m.variant === 'int8' && has(m));
  return stand ? { model: stand, note: `${stand.label} (stand-in: ResNet-50 int8 not in this run)` } : undefined;
}

export function evaluateTargets(r: BenchReport): Target[] {
  const targets: Target[] = [];

  const t1Goal = `warm workerd inference <= ${TARGET_RATIO_ORT_WEB}x onnxruntime-web in Node`;
  const t1 = r.models.filter((m) => m.ratios.workerdOverOrtWeb !== null);
  if (t1.length === 0) targets.push(notMeasured('T1', t1Goal, 'no model measured in both workerd and onnxruntime-web'));
  for (const m of t1) {
    const v = m.ratios.workerdOverOrtWeb!;
    targets.push({ id: 'T1', goal: t1Goal, measured: `${m.label}: median ${ms(m.workerd!.warmInference.median)} / ${ms(m.ortWeb!.warm.median)} ms`, value: v, ...judge(v, TARGET_RATIO_ORT_WEB, 'max', ratio) });
  }

  const t2Goal = `int8 ResNet-50 >= ${TARGET_INT8_SPEEDUP}x faster than fp32 in workerd (warm inference medians)`;
  const pairs = [...new Set(r.models.map((m) => m.id))]
    .map((id) => ({
      id,
      int8: r.models.find((m) => m.id === id && m.variant === 'int8' && m.workerd),
      fp32: r.models.find((m) => m.id === id && m.variant === 'fp32' && m.workerd),
    }))
    .filter((p) => p.int8 && p.fp32)
    .sort((a, b) => Number(b.id === 'resnet50v1') - Number(a.id === 'resnet50v1'));
  const pair = pairs[0];
  if (!pair) targets.push(notMeasured('T2', t2Goal, 'no model measured in workerd in both int8 and fp32'));
  else {
    const v = pair.fp32!.workerd!.warmInference.median / pair.int8!.workerd!.warmInference.median;
    const name = pair.id === 'resnet50v1' ? pair.id : `${pair.id} (stand-in: ResNet-50 not in both variants)`;
    targets.push({ id: 'T2', goal: t2Goal, measured: `${name}: fp32 ${ms(pair.fp32!.workerd!.warmInference.median)} ms / int8 ${ms(pair.int8!.workerd!.warmInference.median)} ms`, value: v, ...judge(v, TARGET_INT8_SPEEDUP, 'min', ratio) });
  }

  const e2e = r.endToEnd;
  const standIn = e2e && !e2e.model.startsWith('resnet50v1 int8') ? ' (stand-in: ResNet-50 int8 not in this run)' : '';
  const t3Goal = `decode + preprocess + HTTP overhead <= ${pct(TARGET_OVERHEAD_SHARE)} of inference, 640x480, ResNet-50 int8`;
  const s640 = e2e?.sizes.find((s) => s.image === '640x480');
  if (!e2e || !s640) targets.push(notMeasured('T3', t3Goal, 'no end-to-end figure'));
  else {
    const over = s640.decode.median + s640.preprocess.median + s640.rest;
    const v = over / s640.inference.median;
    targets.push({ id: 'T3', goal: t3Goal, measured: `${e2e.model}${standIn}: (${ms(s640.decode.median)} + ${ms(s640.preprocess.median)} + ${ms(s640.rest)}) / ${ms(s640.inference.median)} ms`, value: v, ...judge(v, TARGET_OVERHEAD_SHARE, 'max', pct) });
  }

  const t4Goal = `12 MP end to end <= ${TARGET_12MP_RATIO}x the 640x480 time`;
  const s12 = e2e?.sizes.find((s) => s.image === '4032x3024');
  if (!e2e || !s640 || !s12) targets.push(notMeasured('T4', t4Goal, 'no end-to-end figure'));
  else {
    const v = s12.client.median / s640.client.median;
    targets.push({ id: 'T4', goal: t4Goal, measured: `${e2e.model}${standIn}: client median ${ms(s12.client.median)} / ${ms(s640.client.median)} ms`, value: v, ...judge(v, TARGET_12MP_RATIO, 'max', ratio) });
    // The other 12 MP formats of a full run (progressive JPEG at reduced scale, streamed PNG).
    for (const other of e2e.sizes.filter((s) => s.image.startsWith('4032x3024 '))) {
      const w = other.client.median / s640.client.median;
      const goal = `12 MP ${other.image.slice('4032x3024 '.length)} end to end <= ${TARGET_12MP_RATIO}x the 640x480 JPEG time`;
      targets.push({ id: 'T4', goal, measured: `${e2e.model}${standIn}: client median ${ms(other.client.median)} / ${ms(s640.client.median)} ms${other.errors ? `, ${other.errors} errors` : ''}`, value: w, ...judge(w, TARGET_12MP_RATIO, 'max', ratio) });
    }
  }

  const t5Goal = `cold start ResNet-50 int8 < ${TARGET_COLD_MS / 1000} s (first request in a fresh isolate, client-observed)`;
  const cold = resnet50Int8(r, (m) => m.workerd !== undefined);
  if (!cold) targets.push(notMeasured('T5', t5Goal, 'no int8 model measured in workerd'));
  else {
    const w = cold.model.workerd!;
    const v = w.coldClient.median;
    targets.push({ id: 'T5', goal: t5Goal, measured: `${cold.note}: median of ${w.cold.length} fresh isolate(s) (${w.cold.map((c) => ms(c.clientMs)).join(', ')} ms), model ${ms(w.coldModel.median)} + inference ${ms(w.coldInference.median)} ms`, value: v, ...judge(v, TARGET_COLD_MS, 'max', (x) => `${Math.round(x)} ms`, true) });
  }

  const t6Goal = `every int8 model's onnxruntime-web heap fits ${mib(MEMORY_LIMIT_BYTES)}`;
  const int8Memory = r.models.filter((m) => m.variant === 'int8' && m.memory);
  if (int8Memory.length === 0) targets.push(notMeasured('T6', t6Goal, 'no int8 model measured'));
  else {
    const worst = int8Memory.reduce((a, b) => (b.memory!.total > a.memory!.total ? b : a));
    const v = worst.memory!.total;
    targets.push({ id: 'T6', goal: t6Goal, measured: `largest: ${worst.label}, wasm peak ${mib(worst.memory!.wasmHeapPeak)} + JS ${mib(Math.max(0, worst.memory!.jsHeapDelta))} (${int8Memory.map((m) => m.label).join(', ')})`, value: v, ...judge(v, MEMORY_LIMIT_BYTES, 'max', mib) });
  }

  const sf = r.split;
  const t6SplitGoal = `a model split across Workers: every isolate's onnxruntime heap fits ${mib(MEMORY_LIMIT_BYTES)}`;
  if (sf) {
    const perIsolate = largestSplitIsolate(sf);
    if (perIsolate === null) targets.push(notMeasured('T6', t6SplitGoal, `${sf.model} split: no heap measured`));
    else {
      const whole = sf.nodeHeaps.find((h) => h.stage === -1);
      targets.push({
        id: 'T6',
        goal: t6SplitGoal,
        measured: `${sf.model} in ${sf.stages} Workers: largest isolate ${mib(perIsolate)} (workerd heap or ort-web peak + JS, whichever is larger)${whole ? `; whole model ${mib(whole.wasmHeapPeak + whole.jsHeapDelta)}` : ''}`,
        value: perIsolate,
        ...judge(perIsolate, MEMORY_LIMIT_BYTES, 'max', mib),
      });
    }
  }

  const t7Goal = `ResNet-50 int8 cost < ${usd(PRICES.workersAiResnet50UsdPerMillionImages)} per million images (Workers CPU price; Workers AI's ResNet-50 price)`;
  const cost = resnet50Int8(r, (m) => m.cost !== null);
  if (!cost) targets.push(notMeasured('T7', t7Goal, 'no int8 model measured in workerd'));
  else {
    const c = cost.model.cost!;
    targets.push({ id: 'T7', goal: t7Goal, measured: `${cost.note}: ${ms(c.cpuMsPerImage)} CPU ms per 640x480 image x ${usd(PRICES.workersUsdPerMillionCpuMs)}/M CPU-ms`, value: c.usdPerMillion, ...judge(c.usdPerMillion, PRICES.workersAiResnet50UsdPerMillionImages, 'max', usd, true) });
  }
  // Figure 7 (issue #11): no failed request in any round; admission's fast 503s count apart.
  for (const f of r.coldBursts ?? []) {
    const goal = `${f.rounds.length} cold bursts of ${f.clients} clients x ${f.seconds} s, ${f.split ? `split model (${f.stages} Workers)` : 'whole model'}: 0 failed requests`;
    const t = f.totals;
    targets.push({
      id: 'T8',
      goal,
      measured: `${f.model}: ${t.requests} requests, ${t.ok} x 200, ${t.admission503} admission 503s, ${t.failed} failed`,
      value: t.failed,
      ...(t.failed === 0 ? { status: 'PASS' as const, detail: '0 failed' } : { status: 'MISS' as const, detail: `${t.failed} failed (${t.hangs} hangs)` }),
    });
  }
  return targets;
}

/** The largest of a split model's isolates, by either measurement (workerd's own, or ort-web's in Node + JS heap). */
function largestSplitIsolate(sf: SplitFigure): number | null {
  const values = [
    ...sf.isolates.filter((i) => i.stage >= 0 && i.wasmHeapBytes > 0).map((i) => i.wasmHeapBytes),
    ...sf.nodeHeaps.filter((h) => h.stage >= 0).map((h) => h.wasmHeapPeak + h.jsHeapDelta),
  ];
  return values.length ? Math.max(...values) : null;
}

function splitSummary(sf: SplitFigure): string {
  const w = sf.warm;
  const cold = (xs: Array<{ clientMs: number }>) => (xs.length ? ms(median(xs.map((x) => x.clientMs))) : 'n/a');
  const largest = largestSplitIsolate(sf);
  const whole = sf.nodeHeaps.find((h) => h.stage === -1);
  return (
    `Split model (figure 6): ${sf.model} in ${sf.stages} Workers (${sf.stageBytes.map((b) => mb(b)).join(' + ')}, handing over ${sf.handover.join(', ')}): ` +
    `warm inference ${medP95(w.splitInference)} ms vs ${medP95(w.wholeInference)} ms whole (${ratio(sf.overhead)}); ` +
    `cold first request ${cold(sf.cold.split)} vs ${cold(sf.cold.whole)} ms; ` +
    `largest isolate ${largest === null ? 'n/a' : mib(largest)}${whole ? ` vs ${mib(whole.wasmHeapPeak + whole.jsHeapDelta)} whole` : ''}` +
    (sf.errors.length ? `; errors: ${sf.errors.join('; ')}` : '')
  );
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function targetsTable(r: BenchReport): string {
  return table(
    ['id', 'target', 'measured', 'result'],
    r.targets.map((t) => [t.id, t.goal, t.measured, `**${t.status}**: ${t.detail}`]),
  );
}

function modelsSummaryTable(r: BenchReport): string {
  return table(
    ['model', 'workerd warm inference, median / p95 (ms)', 'ort-web Node (ms)', 'ort-node (ms)', 'workerd / ort-web', 'workerd / ort-node', 'cold first request (ms)', 'ort-web heap', 'CPU ms per 640x480 image', '$ per M images (CPU)'],
    r.models.map((m) => [
      m.label,
      medP95(m.workerd?.warmInference),
      medP95(m.ortWeb?.warm),
      medP95(m.ortNode?.warm),
      ratio(m.ratios.workerdOverOrtWeb),
      ratio(m.ratios.workerdOverOrtNode),
      m.workerd ? ms(m.workerd.coldClient.median) : 'n/a',
      m.memory ? `${mib(m.memory.total)}${m.memory.fits ? '' : ' (over 128 MiB)'}` : 'n/a',
      m.cost ? ms(m.cost.cpuMsPerImage) : 'n/a',
      m.cost ? usd(m.cost.usdPerMillion) : 'n/a',
    ]),
  );
}

/** The summary printed at the end of a run and pasted into README.md. */
export function renderSummary(r: BenchReport): string {
  const e2e = r.endToEnd;
  const lines = [
    `Benchmark ${r.meta.quick ? '(quick) ' : ''}${r.meta.date.slice(0, 10)}, ${r.meta.machine.cpus} x ${r.meta.machine.cpuModel}, Node ${r.meta.machine.node}, wrangler ${r.meta.versions['wrangler']} (workerd ${r.meta.versions['workerd']}); \`${r.meta.command}\``,
    `Milliseconds; medians / nearest-rank p95 of ${r.meta.iterations} after ${r.meta.warmup} warm-up; cold = median of ${r.meta.coldRuns} fresh isolate(s); synthetic weights; one run on a shared machine.`,
    '',
    modelsSummaryTable(r),
    '',
  ];
  if (e2e) {
    lines.push(
      table(
        [`end to end, ${e2e.model}`, 'client median / p95 (ms)', 'decode', 'preprocess', 'inference', 'rest'],
        e2e.sizes.map((s) => [s.image, medP95(s.client), ms(s.decode.median), ms(s.preprocess.median), ms(s.inference.median), ms(s.rest)]),
      ),
      '',
      `Throughput (${e2e.throughputImage}): ${e2e.throughput
        .map((t) => `c=${t.concurrency}: ${t.imagesPerSecond.toFixed(2)} images/s, ${t.errors} errors${t.proxyResets ? ` (+${t.proxyResets} wrangler dev proxy resets, retried)` : ''}`)
        .join('; ')}`,
      '',
    );
  }
  if (r.split) lines.push(splitSummary(r.split), '');
  for (const f of r.coldBursts ?? []) {
    lines.push(`Cold bursts, ${f.model} ${f.split ? `split in ${f.stages} Workers` : 'whole'}: ${f.totals.requests} requests in ${f.rounds.length} rounds, ${f.totals.ok} x 200, ${f.totals.admission503} admission 503s, ${f.totals.failed} failed; p50 ${f.p50} ms, p99 ${f.p99} ms.`, '');
  }
  lines.push(targetsTable(r));
  return lines.join('\n');
}

/** The full report (bench/report.md): one section per figure, in the order of the run. */
export function renderMarkdown(r: BenchReport): string {
  return [
    ...reportHeader(r),
    ...inferenceSection(r),
    ...endToEndSection(r),
    ...costSection(r),
    ...nodeStagesSection(r),
    ...memorySection(r),
    ...targetsSection(r),
    ...splitSection(r),
    ...burstsSection(r),
    ...failuresSection(r),
  ].join('\n');
}

/** Title, run facts and the summary. */
function reportHeader(r: BenchReport): string[] {
  const m = r.meta;
  const out: string[] = [];
  out.push(
    '# Benchmark report',
    '',
    `- **Date**: ${m.date}`,
    `- **Machine**: ${m.machine.cpus} x ${m.machine.cpuModel}, ${m.machine.memoryGiB} GiB RAM, ${m.machine.os}, Node ${m.machine.node}`,
    `- **Versions**: ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `- **Code**: ${m.code} (the Worker was bundled once at the start of the run and every wrangler dev served that bundle)`,
    `- **Command**: \`${m.command}\`${m.quick ? ' (quick: CI-sized, fewer iterations, ResNet-18 only; targets about ResNet-50 use a named stand-in)' : ''}`,
    `- **Settings**: ${m.iterations} measured iterations per figure after ${m.warmup} warm-up; ${m.coldRuns} fresh wrangler dev isolate(s) per model for the cold path; max(${m.throughputRequests}, ${m.quick ? 1 : 2} x concurrency) requests per concurrency level; run took ${(m.durationS / 60).toFixed(1)} min`,
    '- **Noise**: this machine is shared (2 cores, other jobs running). Figures are medians with nearest-rank p95; ratios compare figures from this one run. Expect run-to-run differences of 10-30%.',
    '- **Weights**: every model has synthetic weights (models/src/resnet.ts, seed 0, full width); speed and memory do not depend on the values, accuracy is not measured here. int8 models come from the project quantizer (models/src/quantize), calibrated on the fixture photos preprocessed by the wasm kernel.',
    '- **Locally, the Workers clock is real**: stage timings come from the `Server-Timing` header of `/predict` under `wrangler dev` (workerd with V8 defaults). ' +
      "workerd's clock ticks in whole milliseconds, so short stages (preprocess) read as 0, 1 or 2 ms.",
    '',
    '## Summary',
    '',
    renderSummary(r),
    '',
  );

  return out;
}

/** Figure 1: warm and cold inference per model and runtime, and V8 tier-up in workerd. */
function inferenceSection(r: BenchReport): string[] {
  const m = r.meta;
  const N = `${m.iterations} measured`;
  const out: string[] = [];
  out.push(
    '## 1. Inference per model',
    '',
    `Warm latency of one 224x224 inference (batch 1), milliseconds, median / p95 of ${N} after ${m.warmup} warm-up. ` +
      'workerd: `inference` from Server-Timing of `/predict` with the 640x480 JPEG. Node: the same model and the same input tensor ' +
      '(that JPEG through the wasm preprocessing kernel), each runtime in a fresh process; onnxruntime-web 1 thread, onnxruntime-node `intraOpNumThreads: 1`; ' +
      'session options as in src/onnx/session.ts (graph optimisation all, no CPU arena). ' +
      `Everything takes turns in blocks of ${BLOCK}: for each variant of a model (int8, fp32), workerd requests (each variant in its own wrangler dev), ` +
      'then onnxruntime-web runs, then onnxruntime-node runs, repeated until each has its count; all processes stay alive and only one works at a time, ' +
      "so that the machine's background load falls on all of them alike and the ratios (runtime to runtime, int8 to fp32) compare like with like.",
    '',
    table(
      ['model', 'file', 'workerd', 'ort-web in Node', 'ort-node', 'workerd / ort-web', 'workerd / ort-node', 'same top-1'],
      r.models.map((x) => [
        `${x.label} (${x.precision}${x.disablePrepacking ? ', no weight pre-packing' : ''})`,
        mb(x.fileBytes),
        medP95(x.workerd?.warmInference),
        medP95(x.ortWeb?.warm),
        medP95(x.ortNode?.warm),
        ratio(x.ratios.workerdOverOrtWeb),
        ratio(x.ratios.workerdOverOrtNode),
        x.top1Agrees === null ? 'n/a' : x.top1Agrees ? 'yes' : '**no**',
      ]),
    ),
    '',
    `Cold path, milliseconds. workerd: first \`/predict\` (640x480) in a fresh isolate (wrangler dev restarted), median of ${m.coldRuns} restart(s); ` +
      '`model` is R2 read + sha256 + session creation, `inference` the first run before V8 tiered up. ' +
      'The Worker initialises onnxruntime and runs a tiny int8 ResNet at isolate start-up (`WARM_START`, src/onnx/session.ts `warmUp`), ' +
      'so that work is in "wrangler dev start to ready", not in the first request; deployed, Cloudflare starts an isolate while the TLS handshake runs. ' +
      'Node: session creation (for ort-web including compiling ORT\'s 14 MB wasm) + first run in a fresh process (one sample).',
    '',
    table(
      ['model', 'workerd first request (client)', 'model', 'inference', 'decode + preprocess', 'wrangler dev start to ready', 'ort-web create + first run', 'ort-node create + first run'],
      r.models.map((x) => {
        const w = x.workerd;
        const c = w?.cold[w.cold.length - 1];
        return [
          x.label,
          w ? `${ms(w.coldClient.median)}${w.cold.length > 1 ? ` (${w.cold.map((s) => ms(s.clientMs)).join(', ')})` : ''}` : 'n/a',
          w ? ms(w.coldModel.median) : 'n/a',
          w ? ms(w.coldInference.median) : 'n/a',
          c ? ms(c.stages.decode + c.stages.preprocess) : 'n/a',
          w ? ms(median(w.cold.map((s) => s.readyMs))) : 'n/a',
          x.ortWeb ? `${ms(x.ortWeb.createMs)} + ${ms(x.ortWeb.firstRunMs)} = ${ms(x.ortWeb.coldMs)}` : 'n/a',
          x.ortNode ? `${ms(x.ortNode.createMs)} + ${ms(x.ortNode.firstRunMs)} = ${ms(x.ortNode.coldMs)}` : 'n/a',
        ];
      }),
    ),
    '',
    'V8 tier-up in workerd: `inference` (ms) by request number in the last fresh isolate (request 1 is the cold one), ' +
      'single requests first, then medians of ranges; "settled" is the first request k where the median of requests k..k+4 is within 1.15x ' +
      'of the warm median. The whole series is in report.json (`models[].workerd.series`).',
    '',
  );
  out.push(...tierUpTable(r));
  return out;
}

/** Figure 1's V8 tier-up table: workerd inference by request number in the last fresh isolate. */
function tierUpTable(r: BenchReport): string[] {
  const withSeries = r.models.filter((x) => x.workerd);
  const length = Math.max(0, ...withSeries.map((x) => x.workerd!.series.length));
  const ranges: Array<[number, number]> = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [6, 10], [11, 20], [21, length]];
  const buckets = ranges.filter(([a]) => a <= length).map(([a, b]): [number, number] => [a, Math.min(b, length)]);
  return [
    table(
      ['model', ...buckets.map(([a, b]) => (a === b ? `#${a}` : `#${a}-${b}`)), 'settled at'],
      withSeries.map((x) => {
        const series = x.workerd!.series;
        return [
          x.label,
          ...buckets.map(([a, b]) => {
            const part = series.slice(a - 1, b);
            return part.length ? ms(median(part)) : 'n/a';
          }),
          x.workerd!.settledAt === null ? 'n/a' : `#${x.workerd!.settledAt}`,
        ];
      }),
    ),
    '',
  ];
}

/** Figure 2: end-to-end latency per image size, and throughput. */
function endToEndSection(r: BenchReport): string[] {
  const m = r.meta;
  const N = `${m.iterations} measured`;
  const out: string[] = [];
  const e2e = r.endToEnd;
  out.push('## 2. End to end', '');
  if (!e2e) out.push('Not measured (no model ran in workerd).', '');
  else {
    out.push(
      `${e2e.model} in workerd, \`POST /predict/<model>\` with the JPEG as multipart field \`data\`, milliseconds, median / p95 of ${N} requests per size ` +
        `after ${e2e.warmupPerSize} warm-up request(s) per size, one at a time, the sizes taking turns in blocks of ${BLOCK}. Stage columns are median / p95 from Server-Timing ` +
        '(decode is the pipeline\'s own: reduced-scale DCT decoding where the JPEG allows it, see figure 3); ' +
        '`rest` = median of client-observed latency - (model + decode + preprocess + inference), with the medians of its parts: the server\'s own remainder ' +
        '(multipart parsing, postprocessing, JSON) and transport (client - server total: HTTP through wrangler dev\'s proxy on loopback). ' +
        'CPU ms per image = server-side `total` (an isolate is single-threaded, and locally its clock is real; includes reading the body).',
      '',
      table(
        ['image', 'JPEG', 'client', 'decode', 'preprocess', 'inference', 'rest (server + transport)', 'CPU ms per image', '$ per M images', 'errors'],
        e2e.sizes.map((s) => [
          s.image,
          mb(s.bytes),
          medP95(s.client),
          medP95(s.decode),
          medP95(s.preprocess),
          medP95(s.inference),
          `${ms(s.rest)} (${ms(s.restServer)} + ${ms(s.restTransport)})`,
          ms(s.cpuMsPerImage),
          usd(s.usdPerMillion),
          `${s.errors}${s.proxyResets ? ` (+${s.proxyResets} proxy resets, retried)` : ''}`,
        ]),
      ),
      '',
      `Throughput with ${e2e.throughputImage}: N requests with C in flight (one wrangler dev isolate, which runs one inference at a time), images/s = successful responses / wall time; latency in ms. ` +
        '"errors" are requests without a 200 answer. "proxy resets" are attempts that wrangler dev\'s own proxy lost: under many concurrent requests, the connection between its proxy worker ' +
        'and the Worker is reset (workerd logs "Connection reset by peer") and wrangler answers 503 "Your worker restarted mid-request" to any POST that hits a network error; ' +
        'the Worker neither failed nor restarted ("session loads" counts answers that had to load the model again: 0 means the same isolate and session served them all). ' +
        'Such attempts are sent again (at most twice), the latency counts from the first attempt, and deployed Workers have no such hop.',
      '',
      table(
        ['concurrency', 'requests', 'images/s', 'client median / p95', 'errors', 'proxy resets (retried)', 'session loads'],
        e2e.throughput.map((t) => [
          String(t.concurrency),
          String(t.requests),
          t.imagesPerSecond.toFixed(2),
          medP95(t.client),
          t.errors === 0 ? '0' : `**${t.errors}**: ${t.errorSamples.join('; ')}`,
          String(t.proxyResets),
          String(t.sessionLoads),
        ]),
      ),
      '',
    );
  }
  return out;
}

/** Cost per million images at Workers' CPU price. */
function costSection(r: BenchReport): string[] {
  const out: string[] = [];
  out.push(
    `Cost per million images at Workers' CPU price (${usd(PRICES.workersUsdPerMillionCpuMs)} per million CPU-ms, Standard plan, ${PRICES.sources[0]}), ` +
      `from the CPU ms (server-side total, median) per 640x480 image of figure 1's warm requests; beside it the same plus the request fee ` +
      `(${usd(PRICES.workersUsdPerMillionRequests)} per million), and Workers AI's published ${usd(PRICES.workersAiResnet50UsdPerMillionImages)} per million for @cf/microsoft/resnet-50 (${PRICES.sources[1]}). ` +
      'Local CPU on this shared machine stands in for Cloudflare\'s; included monthly allowances are ignored.',
    '',
    table(
      ['model', 'CPU ms per image', '$ per M (CPU)', '$ per M (CPU + requests)', '$ per M (CPU) / Workers AI ResNet-50'],
      r.models
        .filter((x) => x.cost)
        .map((x) => [
          x.label,
          ms(x.cost!.cpuMsPerImage),
          usd(x.cost!.usdPerMillion),
          usd(x.cost!.usdPerMillion + PRICES.workersUsdPerMillionRequests),
          ratio(x.cost!.usdPerMillion / PRICES.workersAiResnet50UsdPerMillionImages),
        ]),
    ),
    '',
  );

  return out;
}

/** Figure 3: preprocessing kernel and JPEG decoding in Node. */
function nodeStagesSection(r: BenchReport): string[] {
  const m = r.meta;
  const N = `${m.iterations} measured`;
  const out: string[] = [];
  out.push(
    '## 3. Preprocessing kernel and JPEG decoding (Node)',
    '',
    `Milliseconds, median / p95 of ${N} calls per image in this process, the two functions compared taking turns in blocks of ${BLOCK}, after warm-up calls. ` +
      'Decode: src/image at the scale the decode plan picks (`planDecode` with the resize target 256: JPEGs are decoded in the DCT domain ' +
      'at the smallest 1/2, 1/4 or 1/8 scale that keeps the shorter side >= 2 x 256; output size shown) and at full size (our decoder, bit-exact with Pillow). ' +
      'Preprocessing: the image as the pipeline decodes it into both the wasm kernel (wasm/preprocess) and the TypeScript reference ' +
      '(src/preprocess/reference.ts): resize shorter side to 256, center crop 224, normalise. ' +
      'Test JPEGs: test/fixtures/photos/coffee.jpg (600x400) cropped and bilinearly scaled to each size, with light synthetic grain, baseline jpeg-js quality 90.',
    '',
    table(
      ['image', 'JPEG', 'decode as the Worker does', 'decoded to', 'full-size decode', 'kernel', 'reference', 'reference / kernel', 'identical output'],
      r.nodeStages.map((s) => [
        s.image,
        mb(s.bytes),
        medP95(s.decode),
        s.decodedSize,
        medP95(s.decodeFull),
        medP95(s.kernel),
        medP95(s.reference),
        ratio(s.kernelSpeedup),
        s.identical ? 'yes' : '**no**',
      ]),
    ),
    '',
  );

  return out;
}

/** Figure 4: onnxruntime-web memory per model. */
function memorySection(r: BenchReport): string[] {
  const out: string[] = [];
  out.push(
    '## 4. Memory (onnxruntime-web in Node)',
    '',
    'Bytes of the WebAssembly.Memory that onnxruntime-web\'s glue creates (captured by wrapping the constructor before ORT loads; ' +
      'the heap only grows, so its size is its peak), after session creation, after the first run, and after all runs; ' +
      'JS heap = `process.memoryUsage().heapUsed` delta around creation and first run (after gc). Fresh process per model. ' +
      `Fits = wasm peak + JS delta <= ${mib(MEMORY_LIMIT_BYTES)} (Workers' 128 MB isolate limit; the isolate also holds compiled code, the decoded image and the request, not counted here).`,
    '',
    table(
      ['model', 'wasm heap after create', 'after first run', 'peak', 'JS heap delta', 'total', 'fits 128 MiB'],
      r.models.map((x) =>
        x.memory
          ? [x.label, mib(x.memory.wasmHeapAfterCreate), mib(x.memory.wasmHeapAfterRun), mib(x.memory.wasmHeapPeak), mib(x.memory.jsHeapDelta), mib(x.memory.total), x.memory.fits ? 'yes' : `**no** (${pct(x.memory.total / MEMORY_LIMIT_BYTES - 1)} over)`]
          : [x.label, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a'],
      ),
    ),
    '',
  );

  return out;
}

/** Figure 5: the targets. */
function targetsSection(r: BenchReport): string[] {
  const out: string[] = [];
  out.push(
    '## 5. Targets',
    '',
    targetsTable(r),
    '',
    'What was tried for the targets that miss, and the measured cause of the workerd / Node gap (`npx tsx bench/bounds-checks.ts`): README.md, Performance, Notes.',
    '',
  );
  return out;
}

/** Figure 6: a model split across Workers. */
function splitSection(r: BenchReport): string[] {
  const m = r.meta;
  const N = `${m.iterations} measured`;
  const out: string[] = [];
  out.push('## 6. A model split across Workers', '');
  const sf = r.split;
  if (!sf) out.push('Not measured (`--split none`).', '');
  else {
    const heapOf = (stage: number) => sf.isolates.find((i) => i.stage === stage)?.wasmHeapBytes;
    out.push(
      `${sf.model} cut into ${sf.stages} stages by \`models split\` (${sf.stageBytes.map((b) => mb(b)).join(' + ')}; hand-overs ${sf.handover.join(', ')}), ` +
        'served by the front Worker (stage 1) and the stage Workers (wrangler.stage-*.toml) under one wrangler dev, against the same int8 file served whole by the front Worker alone ' +
        '(locally memory is not capped, so the whole model runs too; deployed, it does not fit). ' +
        `Warm: \`inference\` from Server-Timing (for the split model it includes the hops to the stage Workers), ms, median / p95 of ${N} requests each after ${m.warmup} warm-up, taking turns in blocks of ${BLOCK}, 640x480 JPEG. ` +
        `Cold: first request in ${m.coldRuns} fresh wrangler dev(s) each; the split model loads stage 1 before the request and each later stage in its Worker on first use.`,
      '',
      table(
        ['served as', 'warm inference', 'warm client', 'cold first request (client)', 'cold model + inference'],
        (['split', 'whole'] as const).map((k) => {
          const cold = sf.cold[k];
          return [
            k === 'split' ? `split, ${sf.stages} Workers` : 'whole, 1 Worker',
            medP95(k === 'split' ? sf.warm.splitInference : sf.warm.wholeInference),
            medP95(k === 'split' ? sf.warm.splitClient : sf.warm.wholeClient),
            cold.length ? `${ms(median(cold.map((c) => c.clientMs)))} (${cold.map((c) => ms(c.clientMs)).join(', ')})` : 'n/a',
            cold.length ? `${ms(median(cold.map((c) => c.model)))} + ${ms(median(cold.map((c) => c.inference)))}` : 'n/a',
          ];
        }),
      ),
      '',
      `Split / whole warm inference: ${ratio(sf.overhead)}.`,
      '',
      "Memory per isolate: onnxruntime's wasm heap as each Worker reported it from inside workerd after the run (`X-Wasm-Heap-Bytes`, listed by `GET /models/<id>`), " +
        'and onnxruntime-web in Node for the same file, a fresh process each (wasm peak + JS heap delta).',
      '',
      table(
        ['isolate', 'file', 'workerd heap', 'ort-web peak + JS (Node)', 'fits 128 MiB'],
        sf.nodeHeaps.map((h) => {
          const workerd = heapOf(h.stage);
          const worst = Math.max(workerd ?? 0, h.wasmHeapPeak + h.jsHeapDelta);
          return [
            h.stage === -1 ? 'whole model (1 Worker)' : h.stage === 0 ? 'stage 1: front Worker' : `stage ${h.stage + 1}: STAGE_${h.stage}`,
            mb(h.bytes),
            workerd ? mib(workerd) : 'n/a',
            mib(h.wasmHeapPeak + h.jsHeapDelta),
            worst <= MEMORY_LIMIT_BYTES ? 'yes' : `**no** (${pct(worst / MEMORY_LIMIT_BYTES - 1)} over)`,
          ];
        }),
      ),
      '',
    );
    if (sf.errors.length) out.push(...sf.errors.map((e) => `- error: ${e}`), '');
  }

  return out;
}

/** Figure 7: cold bursts. */
function burstsSection(r: BenchReport): string[] {
  const out: string[] = [];
  out.push('## 7. Cold bursts', '');
  if (!r.coldBursts) out.push('Not measured (`--bursts 0`; quick runs leave it to `test/load/burst.test.ts`).', '');
  else {
    out.push(
      'A fresh `wrangler dev` (front + both stage Workers, as `npm start`) per round; right after it first answers, 16 clients post a 768x576 JPEG back to back for 20 s, ' +
        "straight to wrangler dev's runtime as a deployed Worker is reached (through its dev proxy, bursts lose requests that the Worker never saw fail: README, Holding up under load). " +
        "Admission control's fast 503 `overloaded` with Retry-After counts apart from failures. Reproduce: `npm run burst -- [--split --model resnet101v1]`.",
      '',
    );
    for (const f of r.coldBursts) out.push(renderFigure(f), '');
  }

  return out;
}

/** What failed during the run. */
function failuresSection(r: BenchReport): string[] {
  const out: string[] = [];
  const problems = [
    ...r.failures.map((f) => `- ${f.model}: ${f.stage} failed: ${f.error}`),
    ...r.models.flatMap((x) => x.errors.map((e) => `- ${x.label}: ${e}`)),
  ];
  out.push('## Failures', '', ...(problems.length ? problems : ['None.']), '');
  return out;
}

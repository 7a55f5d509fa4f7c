/**
 * `npm run bench` in quick mode, through the library function: every figure of the report is
 * produced, finite and sane. It does not judge speed (the targets may MISS); it checks that
 * the benchmark measures what it claims to. Output goes to bench/tmp/quick-test/ so that the
 * committed bench/report.md stays the one from a full run; built models, test JPEGs and the
 * local R2 are shared with `npm run bench` (bench/tmp/), so a second run reuses them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONCURRENCY, runBenchmark, type BenchResult } from '../../bench/harness';
import { benchOptions } from '../../bench/options';
import type { Summary } from '../../bench/stats';
import type { BenchReport } from '../../bench/types';
import { ROOT } from '../../models/src/paths';

const OUT = join(ROOT, 'bench/tmp/quick-test');
/**
 * Budget for the CI-sized run on 2 shared cores. Was 120 s (the benchmark issue's figure) until
 * figure 6 (a split model's Workers started cold) brought a lone run to 95-101 s; with the
 * decoder tests running beside it in the same vitest run there was no margin left (a run on a
 * loaded machine took 235 s, 2026-12-02). Quick mode now splits into 2 stages, not 3.
 */
const BUDGET_MS = 240_000;

let result: BenchResult;
let report: BenchReport;
let markdown: string;

beforeAll(async () => {
  result = await runBenchmark(
    benchOptions({
      quick: true,
      outDir: OUT,
      workDir: join(ROOT, 'bench/tmp'),
      persistTo: join(ROOT, 'bench/tmp/wrangler-state'),
      command: 'runBenchmark(benchOptions({ quick: true })) in test/node/bench.test.ts',
    }),
  );
  report = JSON.parse(await readFile(result.jsonPath, 'utf8')) as BenchReport;
  markdown = await readFile(result.markdownPath, 'utf8');
}, BUDGET_MS);

function expectLatency(s: Summary | null | undefined, what: string): void {
  expect(s, what).toBeTruthy();
  for (const v of [s!.median, s!.p95, s!.min, s!.max]) {
    expect(Number.isFinite(v), `${what}: ${v}`).toBe(true);
    expect(v, what).toBeGreaterThan(0);
  }
  expect(s!.p95, what).toBeGreaterThanOrEqual(s!.median);
  expect(s!.n, what).toBeGreaterThanOrEqual(report.meta.iterations);
}

const positive = (v: number | null | undefined, what: string): void => {
  expect(v, what).not.toBeNull();
  expect(Number.isFinite(v), `${what}: ${v}`).toBe(true);
  expect(v!, what).toBeGreaterThan(0);
};

describe('npm run bench --quick', () => {
  it('measured resnet18v1 in both variants without failures, and wrote the report', () => {
    expect(report.meta.quick).toBe(true);
    expect(report.failures).toEqual([]);
    expect(report.models.map((m) => m.label)).toEqual(['resnet18v1 int8', 'resnet18v1 fp32']);
    for (const m of report.models) expect(m.errors, m.label).toEqual([]);
    expect(result.jsonPath.startsWith(OUT)).toBe(true);
    expect(result.markdownPath.startsWith(OUT)).toBe(true);
  });

  it('header: date, machine, versions, command, noise note', () => {
    expect(Number.isNaN(Date.parse(report.meta.date))).toBe(false);
    expect(report.meta.machine.cpus).toBeGreaterThan(0);
    for (const k of ['wrangler', 'workerd', 'onnxruntime-web', 'onnxruntime-node']) expect(report.meta.versions[k], k).toMatch(/^\d+\.\d+/);
    for (const s of ['**Date**', '**Machine**', '**Versions**', '**Command**', '**Noise**', report.meta.command]) expect(markdown).toContain(s);
  });

  it('figure 1: warm, cold and tier-up in workerd, onnxruntime-web and onnxruntime-node, with ratios', () => {
    for (const m of report.models) {
      const w = m.workerd!;
      expectLatency(w.warmInference, `${m.label} workerd warm`);
      expectLatency(m.ortWeb?.warm, `${m.label} ort-web warm`);
      expectLatency(m.ortNode?.warm, `${m.label} ort-node warm`);
      expect(w.cold).toHaveLength(report.meta.coldRuns);
      positive(w.coldClient.median, `${m.label} cold client`);
      positive(w.coldModel.median, `${m.label} cold model`);
      positive(w.coldInference.median, `${m.label} cold inference`);
      // The cold request includes the model load, so it is slower than a warm inference.
      expect(w.coldClient.median).toBeGreaterThan(w.warmInference.median);
      expect(w.series).toHaveLength(1 + report.meta.warmup + report.meta.iterations);
      for (const r of [m.ortWeb!, m.ortNode!]) {
        positive(r.createMs, `${m.label} create`);
        positive(r.firstRunMs, `${m.label} first run`);
      }
      positive(m.ratios.workerdOverOrtWeb, `${m.label} workerd/ort-web`);
      positive(m.ratios.workerdOverOrtNode, `${m.label} workerd/ort-node`);
      // Same model, same input tensor: every runtime must give the same top class.
      expect(m.top1Agrees, m.label).toBe(true);
    }
  });

  it('figure 2: end to end per size, throughput at 1/4/16 with zero errors, cost', () => {
    const e2e = report.endToEnd!;
    expect(e2e.model).toBe('resnet18v1 int8');
    expect(e2e.sizes.map((s) => s.image)).toEqual(['640x480', '1920x1080', '4032x3024']);
    for (const s of e2e.sizes) {
      for (const [name, summary] of Object.entries({ client: s.client, decode: s.decode, inference: s.inference, serverTotal: s.serverTotal })) {
        expectLatency(summary, `${s.image} ${name}`);
      }
      expect(Number.isFinite(s.preprocess.median)).toBe(true);
      expect(Number.isFinite(s.rest)).toBe(true);
      expect(s.errors).toBe(0);
      positive(s.cpuMsPerImage, `${s.image} CPU ms`);
      positive(s.usdPerMillion, `${s.image} cost`);
      // The client sees at least what the server spent.
      expect(s.client.median).toBeGreaterThanOrEqual(s.serverTotal.median * 0.99);
    }
    // A 12 MP JPEG cannot decode faster than a 0.3 MP one.
    expect(e2e.sizes[2]!.decode.median).toBeGreaterThan(e2e.sizes[0]!.decode.median);
    expect(e2e.throughput.map((t) => t.concurrency)).toEqual([...CONCURRENCY]);
    for (const t of e2e.throughput) {
      expect(t.errors, `concurrency ${t.concurrency}: ${t.errorSamples.join('; ')}`).toBe(0);
      expect(t.ok).toBe(t.requests);
      expect(t.requests).toBeGreaterThanOrEqual(t.concurrency);
      positive(t.imagesPerSecond, `throughput at ${t.concurrency}`);
    }
    for (const m of report.models) positive(m.cost?.usdPerMillion, `${m.label} cost`);
    expect(report.prices.workersUsdPerMillionCpuMs).toBe(0.02);
    expect(report.prices.workersAiResnet50UsdPerMillionImages).toBe(2.51);
  });

  it('figure 3: kernel vs reference (same output) and jpeg-js decode per size', () => {
    expect(report.nodeStages.map((s) => s.image)).toEqual(['640x480', '1920x1080', '4032x3024']);
    for (const s of report.nodeStages) {
      expectLatency(s.decode, `${s.image} decode`);
      expectLatency(s.kernel, `${s.image} kernel`);
      expectLatency(s.reference, `${s.image} reference`);
      positive(s.kernelSpeedup, `${s.image} speedup`);
      expect(s.identical, s.image).toBe(true);
    }
  });

  it('figure 4: onnxruntime-web heap per model, after creation and after a run', () => {
    for (const m of report.models) {
      const mem = m.memory!;
      // The model's weights live in the heap: it is at least as large as the int8 file.
      expect(mem.wasmHeapAfterCreate, m.label).toBeGreaterThan(m.variant === 'int8' ? m.fileBytes : m.fileBytes / 2);
      expect(mem.wasmHeapAfterRun).toBeGreaterThanOrEqual(mem.wasmHeapAfterCreate);
      expect(mem.wasmHeapPeak).toBeGreaterThanOrEqual(mem.wasmHeapAfterRun);
      expect(Number.isFinite(mem.jsHeapDelta)).toBe(true);
      expect(mem.fits).toBe(mem.total <= report.memoryLimitBytes);
    }
  });

  it('figure 6: a model split across two Workers against the same file whole, heap per isolate', () => {
    const sf = report.split!;
    expect(sf).toMatchObject({ model: 'resnet18v1 int8', stages: 2, errors: [] });
    expect(sf.stageBytes).toHaveLength(2);
    expect(sf.handover).toEqual([expect.stringMatching(/^uint8\[Nx\d+x\d+x\d+\]$/)]);
    expectLatency(sf.warm.splitInference, 'split warm inference');
    expectLatency(sf.warm.wholeInference, 'whole warm inference');
    expectLatency(sf.warm.splitClient, 'split warm client');
    positive(sf.overhead, 'split / whole');
    for (const cold of [sf.cold.split, sf.cold.whole]) {
      expect(cold).toHaveLength(report.meta.coldRuns);
      for (const c of cold) positive(c.clientMs, 'cold client');
    }
    // Every isolate reported its own heap from inside workerd, and each stage's is smaller than the whole model's.
    expect(sf.isolates.map((i) => [i.stage, i.isolate])).toEqual([[0, 'this'], [1, 'STAGE_1'], [-1, 'whole model']]);
    const whole = sf.isolates.find((i) => i.stage === -1)!.wasmHeapBytes;
    for (const i of sf.isolates.filter((x) => x.stage >= 0)) {
      expect(i.wasmHeapBytes).toBeGreaterThan(sf.stageBytes[i.stage]!);
      expect(i.wasmHeapBytes).toBeLessThan(whole);
    }
    expect(sf.nodeHeaps.map((h) => h.stage)).toEqual([0, 1, -1]);
    const wholeNode = sf.nodeHeaps.at(-1)!.wasmHeapPeak;
    for (const h of sf.nodeHeaps.slice(0, 2)) expect(h.wasmHeapPeak).toBeLessThan(wholeNode);
    expect(markdown).toContain('## 6. A model split across Workers');
    expect(result.summary).toContain('Split model (figure 6): resnet18v1 int8 in 2 Workers');
  });

  it('targets T1-T7 are each PASS or MISS with a measured value, in the JSON and in report.md', () => {
    const ids = [...new Set(report.targets.map((t) => t.id))];
    expect(ids).toEqual(['T1', 'T2', 'T3', 'T4', 'T5', 'T6', 'T7']);
    for (const t of report.targets) {
      expect(['PASS', 'MISS'], `${t.id}: ${t.detail}`).toContain(t.status);
      positive(t.value, t.id);
      expect(markdown).toContain(`| ${t.id} | ${t.goal} | ${t.measured} | **${t.status}**`);
      if (t.status === 'MISS') expect(t.detail).toMatch(/over by [\d.]+%|short by [\d.]+%/);
    }
  });

  it('report.md has every section', () => {
    for (const section of [
      '## Summary',
      '## 1. Inference per model',
      '## 2. End to end',
      '## 3. Preprocessing kernel and JPEG decoding (Node)',
      '## 4. Memory (onnxruntime-web in Node)',
      '## 5. Targets',
    ]) {
      expect(markdown).toContain(section);
    }
    expect(result.summary).toContain('| T7 |');
  });
});

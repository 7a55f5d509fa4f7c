/**
 * Measures what the quantizer's defaults were chosen on: speed of each emitted variant in
 * onnxruntime-web (the node build of the package, WASM backend, 1 thread) and its fidelity to
 * the fp32 model on photos it was not calibrated on.
 *
 *   npx tsx bench/quant-formats.ts [--models resnet18v1,resnet50v1] [--runs 15]
 *       [--warmup 5] [--variants default,qdq] [--method percentile] [--percentile 99.99] [--fp32]
 *       [--web-fidelity] [--out dir] [--photos dir]
 *
 * Variants (`--variants`, comma-separated):
 *   default     QOperator, default plan          qdq        QDQ, default plan
 *   int8-tail   QOperator, QLinearGlobalAveragePool + QGemm
 *   float-tail  QOperator, fp32 pool and fp32 classifier
 *   bn-conv     QOperator, v2: unfoldable BNs as depthwise QLinearConv, residual QLinearAdd
 *   bn-float    QOperator, v2: unfoldable BNs as float BatchNormalization, residual QLinearAdd
 * (the default plan keeps v2's unfoldable BNs and its ReLU-less residual Adds in float).
 * Timing: all sessions are created and warmed up first, then run in interleaved rounds (one
 * run of each per round) so that load changes on the shared machine hit all of them alike; the
 * median per session is reported, both of wall time and of process CPU time: inference runs
 * on this one thread (numThreads 1, no proxy worker), so CPU time leaves out the time the
 * thread waited for a core, which on a loaded 2-core machine is most of the noise.
 *
 * Photos: calibration on astronaut, camera, rocket; evaluation on chelsea and coffee (jpg and
 * png), 4 views each, from `--photos` (default: ../shared/data/photos beside the repository,
 * where the build machines keep scikit-image's samples); when that folder lacks one of them,
 * from the scenes the test fixtures have (camera, rocket; chelsea, coffee).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ortWeb from 'onnxruntime-web';
import { PHOTOS, ROOT } from '../models/src/paths';
import { calibrateModel, compareLogits, DEFAULTS, emit, measureFidelity, type CalibrationMethod, type QuantFormat } from '../models/src/quantize/index';
import type { PlanOptions } from '../models/src/quantize/plan';
import { AUGMENTED, photoTensors } from '../models/src/quantize/photos';
import { buildResNet, parseResNetId } from '../models/src/resnet';

const SHARED_PHOTOS = join(ROOT, '../shared/data/photos');

function photoSplit(dir: string): { calibration: Float32Array[]; evaluation: Float32Array[]; note: string } {
  const c = ['astronaut.jpg', 'camera.png', 'rocket.jpg'].map((f) => join(dir, f));
  const e = ['chelsea.jpg', 'chelsea.png', 'coffee.jpg', 'coffee.png'].map((f) => join(dir, f));
  if ([...c, ...e].every((f) => existsSync(f))) {
    return {
      calibration: photoTensors(c, AUGMENTED).map((x) => x.tensor),
      evaluation: photoTensors(e, AUGMENTED).map((x) => x.tensor),
      note: 'calibrated on astronaut/camera/rocket, evaluated on chelsea/coffee (jpg+png), 4 views each',
    };
  }
  const fc = ['camera.png', 'rocket.jpg'].map((f) => join(PHOTOS, f));
  const fe = ['chelsea.jpg', 'chelsea.png', 'coffee.jpg'].map((f) => join(PHOTOS, f));
  return {
    calibration: photoTensors(fc, AUGMENTED).map((x) => x.tensor),
    evaluation: photoTensors(fe, AUGMENTED).map((x) => x.tensor),
    note: 'calibrated on camera/rocket, evaluated on chelsea (jpg+png)/coffee, 4 views each',
  };
}

interface Variant {
  name: string;
  format: QuantFormat;
  plan: Partial<PlanOptions>;
}

const VARIANTS: Record<string, Variant> = {
  default: { name: 'default', format: 'qoperator', plan: {} },
  qdq: { name: 'qdq', format: 'qdq', plan: {} },
  'int8-tail': { name: 'int8-tail', format: 'qoperator', plan: { pool: 'int8', classifier: 'int8' } },
  'float-tail': { name: 'float-tail', format: 'qoperator', plan: { pool: 'float', classifier: 'float' } },
  'bn-conv': { name: 'bn-conv', format: 'qoperator', plan: { unfoldedBn: 'conv', residual: 'int8' } },
  'bn-float': { name: 'bn-float', format: 'qoperator', plan: { unfoldedBn: 'float', residual: 'int8' } },
};

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

/** Quantile by nearest rank (q = 0.5: median, taking the lower middle for even counts). */
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
};
const median = (xs: number[]): number => quantile(xs, 0.5);

async function main(): Promise<void> {
  const models = arg('models', 'resnet18v1,resnet50v1').split(',');
  const runs = Number(arg('runs', '15'));
  const warmup = Number(arg('warmup', '5'));
  const variantNames = arg('variants', 'default,qdq').split(',');
  const method = arg('method', DEFAULTS.method) as CalibrationMethod;
  const percentile = Number(arg('percentile', String(DEFAULTS.percentile)));
  const webFidelity = process.argv.includes('--web-fidelity');
  const withFp32 = process.argv.includes('--fp32') || webFidelity;
  const out = arg('out', '');
  if (out) mkdirSync(out, { recursive: true });
  ortWeb.env.wasm.numThreads = 1;
  const photos = photoSplit(arg('photos', SHARED_PHOTOS));
  console.log(`photos: ${photos.note}; ${photos.calibration.length} calibration / ${photos.evaluation.length} evaluation tensors`);
  console.log(`onnxruntime-web ${ortWeb.env.versions.web ?? '?'}, wasm, 1 thread; ${warmup} warm-up + ${runs} interleaved timed runs`);

  for (const id of models) {
    const { version, depth } = parseResNetId(id);
    const t0 = performance.now();
    const fp32 = buildResNet({ version, depth }).bytes;
    console.log(`\n${id}: fp32 ${(fp32.length / 1e6).toFixed(1)} MB, generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const candidates: { name: string; bytes: Uint8Array }[] = withFp32 ? [{ name: 'fp32', bytes: fp32 }] : [];
    // One calibration per distinct plan; formats share it.
    const byPlan = new Map<string, Awaited<ReturnType<typeof calibrateModel>>>();
    for (const vn of variantNames) {
      const v = VARIANTS[vn];
      if (!v) throw new Error(`unknown variant ${vn} (${Object.keys(VARIANTS).join(', ')})`);
      const key = JSON.stringify({ ...DEFAULTS.plan, ...v.plan });
      let c = byPlan.get(key);
      if (!c) {
        const t = performance.now();
        c = await calibrateModel({ input: fp32, calibration: photos.calibration, method, percentile, plan: v.plan });
        console.log(`  calibrated ${key} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
        byPlan.set(key, c);
      }
      const t = performance.now();
      const r = emit(c, v.format, method);
      const emitMs = performance.now() - t;
      const f = await measureFidelity(fp32, r.model, photos.evaluation);
      console.log(
        `  ${v.name.padEnd(10)} ${v.format.padEnd(9)} ${(r.model.length / 1e6).toFixed(2)} MB (${(r.model.length / fp32.length).toFixed(3)} of fp32), ` +
          `emit ${emitMs.toFixed(0)} ms, cosine mean ${f.cosineMean.toFixed(5)} min ${f.cosineMin.toFixed(5)}, ` +
          `top1 ${f.top1Agreement.toFixed(3)}, top5 ${f.top5Overlap.toFixed(3)}`,
      );
      console.log(`             ops ${JSON.stringify(r.nodes)}`);
      if (out) writeFileSync(`${out}/${id}-${v.name}.onnx`, r.model);
      candidates.push({ name: v.name, bytes: r.model });
    }
    const x = photos.evaluation[0]!;
    const sessions = [];
    let webRef: Float32Array[] | undefined;
    for (const c of candidates) {
      const t = performance.now();
      const s = await ortWeb.InferenceSession.create(c.bytes, { graphOptimizationLevel: 'all' });
      const createMs = performance.now() - t;
      if (webFidelity) {
        // The deployed backend's own view of fidelity (onnxruntime-node's differs by a few LSB flips).
        const logits: Float32Array[] = [];
        for (const e of photos.evaluation) {
          const r = await s.run({ [s.inputNames[0]!]: new ortWeb.Tensor('float32', e, [1, 3, 224, 224]) });
          logits.push(Float32Array.from(r[s.outputNames[0]!]!.data as Float32Array));
        }
        if (c.name === 'fp32') webRef = logits;
        else if (webRef) {
          const f = compareLogits(webRef, logits);
          console.log(`  web ${c.name.padEnd(10)} fidelity in onnxruntime-web: cosine mean ${f.cosineMean.toFixed(5)} min ${f.cosineMin.toFixed(5)}, top1 ${f.top1Agreement.toFixed(3)}`);
        }
      }
      console.log(`  web ${c.name.padEnd(10)} session created in ${createMs.toFixed(0)} ms`);
      const feeds = { [s.inputNames[0]!]: new ortWeb.Tensor('float32', x, [1, 3, 224, 224]) };
      for (let i = 0; i < warmup; i++) await s.run(feeds);
      sessions.push({ name: c.name, s, feeds, wall: [] as number[], cpu: [] as number[] });
    }
    for (let r = 0; r < runs; r++) {
      for (const s of sessions) {
        const c0 = process.cpuUsage();
        const t = performance.now();
        await s.s.run(s.feeds);
        s.wall.push(performance.now() - t);
        const c = process.cpuUsage(c0);
        s.cpu.push((c.user + c.system) / 1000);
      }
    }
    const ref = sessions[withFp32 ? 1 : 0]!;
    const [baseWall, baseCpu] = [median(ref.wall), median(ref.cpu)];
    for (const s of sessions) {
      const [w, c] = [median(s.wall), median(s.cpu)];
      const p10 = quantile(s.cpu, 0.1);
      console.log(
        `  web ${s.name.padEnd(10)} cpu median ${c.toFixed(1)} ms (${(c / baseCpu).toFixed(3)}x of ${ref.name}), ` +
          `p10 ${p10.toFixed(1)} (${(p10 / quantile(ref.cpu, 0.1)).toFixed(3)}x), min ${Math.min(...s.cpu).toFixed(1)}; ` +
          `wall median ${w.toFixed(1)} ms (${(w / baseWall).toFixed(3)}x)`,
      );
      await s.s.release();
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}

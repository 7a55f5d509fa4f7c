/**
 * Figure 6: a model split into stages (`models split`) served by the front Worker and the stage
 * Workers under one wrangler dev, against the same int8 weights served whole by the front alone
 * (locally an isolate's memory is not capped, so the whole model runs too). What the split
 * costs in latency (the hops), and what each isolate holds: the onnxruntime heap as each Worker
 * reports it from inside workerd, and per stage in onnxruntime-web under Node.
 */
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelManifest } from '../src/models/manifest';
import { servedParts, sessionHeap } from './memory';
import { servedId, type BuiltModel } from './models';
import { BLOCK, type BenchOptions } from './options';
import { summarize } from './stats';
import type { SplitFigure } from './types';
import { ensureUploaded, stagesOf, WranglerDev, type Sample, type WorkerConfigs } from './workerd';
import { splitOne } from '../models/src/split';

/**
 * The int8 model in `<dir>-split-<N>/`: model.onnx linked, stages written by `splitOne`, so the
 * whole variant stays as it is for the other figures. Reused while the whole model is unchanged.
 */
async function ensureSplit(whole: BuiltModel, stages: number): Promise<{ dir: string; manifest: ModelManifest }> {
  const dir = `${whole.dir}-split-${stages}`;
  try {
    const have = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest;
    if (have.sha256 === whole.manifest.sha256 && have.stages?.length === stages) return { dir, manifest: have };
  } catch {
    // not split yet
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await symlink(join(whole.dir, 'model.onnx'), join(dir, 'model.onnx'));
  const { stages: _, ...manifest } = whole.manifest;
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return { dir, manifest: await splitOne(dir, stages) };
}

interface Lane {
  name: 'split' | 'whole';
  id: string;
  configs: string | string[];
  dev?: WranglerDev;
  cold: Array<{ clientMs: number; model: number; inference: number }>;
  warm: Sample[];
}

export async function measureSplit(
  o: BenchOptions,
  workers: WorkerConfigs,
  whole: BuiltModel,
  stages: number,
  jpeg: Uint8Array,
  progress: (line: string) => void,
): Promise<SplitFigure> {
  const label = `${whole.spec.id} int8`;
  progress(`${label}: split in ${stages} stages (models/src/commands/split.ts)`);
  const split = await ensureSplit(whole, stages);
  const lanes: Lane[] = [
    { name: 'split', id: `${whole.spec.id}-int8-split`, configs: workers.all, cold: [], warm: [] },
    // The id figure 1 serves the same file under: uploaded already when that model is in the run.
    { name: 'whole', id: servedId(whole.spec), configs: workers.front, cold: [], warm: [] },
  ];
  await ensureUploaded(o.persistTo, lanes[0]!.id, split.dir, split.manifest);
  await ensureUploaded(o.persistTo, lanes[1]!.id, whole.dir, whole.manifest);

  const errors: string[] = [];
  let isolates: SplitFigure['isolates'] = [];
  try {
    for (const lane of lanes) {
      for (let run = 1; run <= o.coldRuns; run++) {
        progress(`${label} ${lane.name}: cold path ${run}/${o.coldRuns} (fresh wrangler dev: ${[lane.configs].flat().length} Worker(s))`);
        await lane.dev?.stop();
        lane.dev = await WranglerDev.start(lane.configs, o.persistTo);
        const first = await lane.dev.predict(lane.id, jpeg);
        const stages = stagesOf(first, `${lane.name} cold request`);
        lane.cold.push({ clientMs: first.clientMs, model: stages.model, inference: stages.inference });
      }
      progress(`${label} ${lane.name}: warm-up, ${o.warmup} requests`);
      for (let i = 0; i < o.warmup; i++) stagesOf(await lane.dev!.predictRetrying(lane.id, jpeg), `${lane.name} warm-up`);
    }
    progress(`${label}: split and whole, ${o.iterations} warm requests each, taking turns in blocks of ${BLOCK}`);
    for (let done = 0; done < o.iterations; done += BLOCK) {
      for (const lane of lanes) {
        for (let i = 0; i < Math.min(BLOCK, o.iterations - done); i++) {
          const s = await lane.dev!.predictRetrying(lane.id, jpeg);
          stagesOf(s, `${lane.name} warm request`);
          lane.warm.push(s);
        }
      }
    }
    // Each stage Worker reports its own heap with every answer; the front lists them.
    const info = (await (await fetch(`${lanes[0]!.dev!.base}/models/${lanes[0]!.id}`)).json()) as {
      loaded?: { isolates?: Array<{ stage: number; isolate: string; wasmHeapBytes?: number }> };
    };
    isolates = (info.loaded?.isolates ?? []).map((i) => ({ stage: i.stage, isolate: i.isolate, wasmHeapBytes: i.wasmHeapBytes ?? 0 }));
    const wholeInfo = (await (await fetch(`${lanes[1]!.dev!.base}/models`)).json()) as { isolate?: { wasmHeapBytes?: number } };
    isolates.push({ stage: -1, isolate: 'whole model', wasmHeapBytes: wholeInfo.isolate?.wasmHeapBytes ?? 0 });
  } catch (err) {
    errors.push(err instanceof Error ? err.message.slice(0, 300) : String(err));
  } finally {
    for (const lane of lanes) await lane.dev?.stop();
  }

  progress(`${label}: onnxruntime-web heap of each stage in Node (fresh process each)`);
  const scratch = join(o.workDir, 'tensors');
  const nodeHeaps: SplitFigure['nodeHeaps'] = [];
  for (const part of [...servedParts(split.dir, split.manifest), ...servedParts(whole.dir, whole.manifest)]) {
    const h = await sessionHeap(scratch, part.file, part.input, part.session);
    nodeHeaps.push({ stage: part.stage ?? -1, bytes: part.bytes, wasmHeapPeak: h.wasmHeapPeak, jsHeapDelta: h.jsHeapDelta });
  }

  const inference = (lane: Lane) => (lane.warm.length ? summarize(lane.warm.map((s) => s.stages!.inference)) : null);
  const client = (lane: Lane) => (lane.warm.length ? summarize(lane.warm.map((s) => s.clientMs)) : null);
  const [s, w] = lanes as [Lane, Lane];
  const splitInference = inference(s);
  const wholeInference = inference(w);
  return {
    model: label,
    stages,
    stageBytes: split.manifest.stages!.map((x) => x.bytes),
    handover: split.manifest.stages!.slice(0, -1).map((x) => `${x.output.type}[${x.output.shape.join('x')}]`),
    cold: { split: s.cold, whole: w.cold },
    warm: { splitInference, wholeInference, splitClient: client(s), wholeClient: client(w) },
    overhead: splitInference && wholeInference ? splitInference.median / wholeInference.median : null,
    isolates,
    nodeHeaps,
    errors,
  };
}

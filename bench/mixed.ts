/**
 * Mixed-model traffic (issue 11, part 3): what requests alternating over several models cost
 * against the same requests to one model at a time, in two deployments under wrangler dev:
 *
 * - one Worker, MAX_LOADED_MODELS = 1: every switch recreates a session (the thrash);
 * - a Worker per model (MODEL_WORKERS, wrangler.model-*.toml): the front serves the first model
 *   and forwards the others over service bindings to Workers that each keep theirs warm.
 *
 * Requests are sequential (concurrency 1), so the ratio measures session swaps, not queueing.
 * Single-model and mixed blocks alternate (the machine is shared and noisy); the first answer
 * of a single block, which may still pay for the switch from the mixed block before it, is
 * not counted. The figure is the median Server-Timing `total` per image; the target is mixed
 * within 1.15x of single. Requests go to the runtime's own socket (`runtimeBase`): wrangler
 * dev's proxy drops connections under load.
 *
 *   npx tsx bench/mixed.ts [--models resnet18v1,resnet34v1,resnet50v1] [--rounds 3] [--block 9]
 *                          [--warmup 5] [--photo coffee.jpg] [--json out.json]
 *
 * Models come from models/out/<id>/int8 (`npm run models -- synth <id>` then
 * `npm run models -- quantize <id> --calib test/fixtures/photos`).
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { ModelManifest } from '../src/models/manifest';
import { median } from './stats';
import { absoluteAssets, ensureUploaded, WranglerDev } from './workerd';
import { DEFAULT_OUT, modelDir, PHOTOS, ROOT } from '../models/src/paths';
import { run } from '../models/src/run';

export const TARGET = 1.15;

export type Deployment = 'one Worker' | 'Worker per model';
type Traffic = 'single' | 'mixed';

export interface MixedSample {
  deployment: Deployment;
  traffic: Traffic;
  model: string;
  /** Server-Timing total of the Worker that ran the model. */
  total: number;
  /** Server time as the front saw it: its forward hop when it forwarded, else its total. */
  front: number;
  clientMs: number;
}

/** `total` and `forward` of a Server-Timing header (`forward;desc="MODEL_A";dur=..`). */
export function serverTimes(header: string | null): { total?: number; forward?: number } {
  const out: { total?: number; forward?: number } = {};
  for (const part of (header ?? '').split(',')) {
    const name = /^\s*([a-z]+)/.exec(part)?.[1];
    const dur = /;\s*dur=([0-9.eE+-]+)/.exec(part)?.[1];
    if ((name === 'total' || name === 'forward') && dur !== undefined && Number.isFinite(Number(dur))) out[name] = Number(dur);
  }
  return out;
}

/** Model Worker binding names: MODEL_A, MODEL_B, ... for the models after the first. */
export const bindingOf = (i: number): string => `MODEL_${String.fromCharCode(65 + i)}`;

/** Replaces a `[vars]` line, or adds it after `[vars]`. */
export function setVar(toml: string, name: string, value: string): string {
  const line = new RegExp(`^${name} = ".*"$`, 'm');
  const text = `${name} = "${value}"`;
  if (line.test(toml)) return toml.replace(line, text);
  if (!/^\[vars\]$/m.test(toml)) throw new Error('config has no [vars] table');
  return toml.replace(/^\[vars\]$/m, `[vars]\n${text}`);
}

/**
 * The configs of one deployment over `models`: the front (wrangler.toml) serving models[0],
 * and, for a Worker per model, one config per other model made from wrangler.model-a.toml.
 * Every Worker runs the snapshot bundle (`main`), without the stage Workers (not run here),
 * the result cache (a repeated image would be a cache hit) or admission limits in the way.
 */
export function deploymentConfigs(
  deployment: Deployment,
  models: readonly string[],
  front: string,
  modelTemplate: string,
  main: string,
): Array<{ name: string; toml: string }> {
  const common = (toml: string) => {
    let out = toml.replace(/^main = .*$/m, `main = "${main}"\nno_bundle = true\nfind_additional_modules = true`);
    out = out.replace(/^\[\[services\]\]\nbinding = "STAGE_\d"\nservice = ".*"\n/gm, '');
    for (const [name, value] of Object.entries({ CACHE_TTL_SECONDS: '0', MAX_LOADED_MODELS: '1', MAX_IN_FLIGHT: '1000', ADMISSION_WAIT_MS: '600000', REQUEST_TIMEOUT_MS: '600000', STAGE_TIMEOUT_MS: '600000' })) {
      out = setVar(out, name, value);
    }
    return out;
  };
  let frontToml = setVar(common(front), 'DEFAULT_MODEL', models[0]!);
  if (deployment === 'one Worker') return [{ name: 'front', toml: setVar(frontToml, 'MODEL_WORKERS', '') }];

  const others = models.slice(1).map((model, i) => ({ model, binding: bindingOf(i), name: `edge-resnet-mixed-${bindingOf(i).toLowerCase().replace('_', '-')}` }));
  frontToml = setVar(frontToml, 'MODEL_WORKERS', others.map((o) => `${o.model}=${o.binding}`).join(','));
  frontToml += others.map((o) => `\n[[services]]\nbinding = "${o.binding}"\nservice = "${o.name}"\n`).join('');
  return [
    { name: 'front', toml: frontToml },
    ...others.map((o) => ({
      name: o.binding.toLowerCase(),
      toml: setVar(common(modelTemplate).replace(/^name = ".*"$/m, `name = "${o.name}"`), 'DEFAULT_MODEL', o.model),
    })),
  ];
}

/**
 * Per deployment, each model's median under single and mixed traffic, and the row `all`: the
 * mean of those medians (one image of each model), so that a slow model weighs as much in
 * both columns and the ratio is like for like.
 */
export interface Row {
  deployment: Deployment;
  model: string;
  single: number;
  mixed: number;
  ratio: number;
  /** Same ratio for the front's view (forward hop) and for the client's. */
  frontRatio: number;
  clientRatio: number;
  n: { single: number; mixed: number };
}

export function rows(samples: readonly MixedSample[], models: readonly string[]): Row[] {
  const out: Row[] = [];
  for (const deployment of ['one Worker', 'Worker per model'] as const) {
    const perModel: Array<Record<Traffic, Record<'total' | 'front' | 'clientMs', number>> & { n: Row['n'] }> = [];
    for (const model of models) {
      const pick = (traffic: Traffic) => samples.filter((s) => s.deployment === deployment && s.traffic === traffic && s.model === model);
      const [single, mixed] = [pick('single'), pick('mixed')];
      if (single.length === 0 || mixed.length === 0) continue;
      const medians = (of: MixedSample[]) => ({ total: median(of.map((s) => s.total)), front: median(of.map((s) => s.front)), clientMs: median(of.map((s) => s.clientMs)) });
      const m = { single: medians(single), mixed: medians(mixed), n: { single: single.length, mixed: mixed.length } };
      perModel.push(m);
      out.push(row(deployment, model, m));
    }
    if (perModel.length === 0) continue;
    const mean = (traffic: Traffic, k: 'total' | 'front' | 'clientMs') => perModel.reduce((a, m) => a + m[traffic][k], 0) / perModel.length;
    const both = (traffic: Traffic) => ({ total: mean(traffic, 'total'), front: mean(traffic, 'front'), clientMs: mean(traffic, 'clientMs') });
    const n = { single: perModel.reduce((a, m) => a + m.n.single, 0), mixed: perModel.reduce((a, m) => a + m.n.mixed, 0) };
    out.push(row(deployment, 'all', { single: both('single'), mixed: both('mixed'), n }));
  }
  return out;
}

function row(deployment: Deployment, model: string, m: Record<Traffic, Record<'total' | 'front' | 'clientMs', number>> & { n: Row['n'] }): Row {
  return {
    deployment,
    model,
    single: m.single.total,
    mixed: m.mixed.total,
    ratio: m.mixed.total / m.single.total,
    frontRatio: m.mixed.front / m.single.front,
    clientRatio: m.mixed.clientMs / m.single.clientMs,
    n: m.n,
  };
}

export function table(all: readonly Row[], command: string): string {
  const f = (x: number) => x.toFixed(1);
  const r = (x: number) => `${x.toFixed(2)}x`;
  const lines = [
    `Mixed-model traffic, sequential requests, median Server-Timing total per image (ms); **all**: the mean of the models' medians. Target: mixed within ${TARGET}x of single.`,
    '',
    "| deployment | model | single | mixed | mixed/single | front's view | client | n (single/mixed) |",
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...all.map(
      (x) =>
        `| ${x.deployment} | ${x.model === 'all' ? '**all**' : x.model} | ${f(x.single)} | ${f(x.mixed)} | ${x.model === 'all' ? `**${r(x.ratio)}**` : r(x.ratio)} | ${r(x.frontRatio)} | ${r(x.clientRatio)} | ${x.n.single}/${x.n.mixed} |`,
    ),
    '',
    ...all
      .filter((x) => x.model === 'all')
      .map((x) => {
        const worst = Math.max(...all.filter((y) => y.deployment === x.deployment && y.model !== 'all').map((y) => y.ratio));
        return `- ${x.deployment}: mixed/single ${r(x.ratio)} (worst model ${r(worst)}), target ${TARGET}x ${x.ratio <= TARGET ? 'met' : 'not met'}`;
      }),
    '',
    "\"front's view\": for forwarded models the front's `forward` Server-Timing (the hop to the model Worker included); \"client\": request sent to answer read.",
    '',
    `Command: \`${command}\` (${new Date().toISOString().slice(0, 10)}, ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'})`,
  ];
  return lines.join('\n');
}

/** The models' int8 builds, or the commands that make them. */
async function builtModels(models: readonly string[]): Promise<Array<{ id: string; dir: string; manifest: ModelManifest }>> {
  return Promise.all(
    models.map(async (id) => {
      const dir = modelDir(DEFAULT_OUT, id, 'int8');
      try {
        return { id, dir, manifest: JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ModelManifest };
      } catch {
        throw new Error(`no ${dir}: build it with npm run models -- synth ${id} && npm run models -- quantize ${id} --calib test/fixtures/photos`);
      }
    }),
  );
}

async function predict(base: string, model: string, photo: Uint8Array): Promise<{ total: number; front: number; clientMs: number }> {
  const form = new FormData();
  form.append('data', new Blob([photo], { type: 'image/jpeg' }), 'photo.jpg');
  const t0 = performance.now();
  const res = await fetch(`${base}/predict/${model}?topk=1`, { method: 'POST', body: form });
  const text = await res.text();
  const clientMs = performance.now() - t0;
  if (res.status !== 200) throw new Error(`${model}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  const { total, forward } = serverTimes(res.headers.get('server-timing'));
  if (total === undefined) throw new Error(`${model}: no Server-Timing total: ${res.headers.get('server-timing')}`);
  return { total, front: forward ?? total, clientMs };
}

async function measure(
  deployment: Deployment,
  configs: string[],
  options: { models: string[]; rounds: number; block: number; warmup: number; photo: Uint8Array; persistTo: string },
): Promise<MixedSample[]> {
  const { models, rounds, block, warmup, photo } = options;
  const dev = await WranglerDev.start(configs, options.persistTo);
  const samples: MixedSample[] = [];
  try {
    const base = dev.runtimeBase;
    // Every model loaded, and every isolate's onnxruntime compiled and tiered up (V8 optimises
    // hot wasm in the background), before anything counts.
    for (let i = 0; i < warmup; i++) for (const model of models) await predict(base, model, photo);
    for (let round = 0; round < rounds; round++) {
      for (const [m, model] of models.entries()) {
        for (let i = 0; i < block; i++) {
          const s = await predict(base, model, photo);
          if (i > 0) samples.push({ deployment, traffic: 'single', model, ...s });
        }
        // Round-robin, starting at a different model each block.
        for (let i = 0; i < block; i++) {
          const mixedModel = models[(i + m + round) % models.length]!;
          samples.push({ deployment, traffic: 'mixed', model: mixedModel, ...(await predict(base, mixedModel, photo)) });
        }
      }
      process.stderr.write(`${deployment}: round ${round + 1}/${rounds} done\n`);
    }
  } finally {
    await dev.stop();
  }
  return samples;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      models: { type: 'string', default: 'resnet18v1,resnet34v1,resnet50v1' },
      rounds: { type: 'string', default: '3' },
      block: { type: 'string', default: '9' },
      warmup: { type: 'string', default: '5' },
      photo: { type: 'string', default: 'coffee.jpg' },
      json: { type: 'string' },
    },
  });
  const models = values.models.split(',').map((s) => s.trim()).filter(Boolean);
  const [rounds, block, warmup] = [Number(values.rounds), Number(values.block), Number(values.warmup)];
  if (models.length < 2 || !(rounds >= 1) || !(block >= 2) || !(warmup >= 1)) {
    throw new Error('usage: npx tsx bench/mixed.ts [--models a,b,c] [--rounds N>=1] [--block N>=2] [--warmup N>=1] [--photo file] [--json out]');
  }
  const command = `npx tsx bench/mixed.ts ${process.argv.slice(2).join(' ')}`.trim();

  const workDir = join(ROOT, 'bench/tmp/mixed');
  const persistTo = join(workDir, 'state');
  for (const m of await builtModels(models)) {
    if (await ensureUploaded(persistTo, m.id, m.dir, m.manifest)) process.stderr.write(`uploaded ${m.id} to local R2\n`);
  }
  const photo = new Uint8Array(await readFile(join(PHOTOS, values.photo)));

  // One bundle of src/index.ts for every Worker, so that edits others make meanwhile (wrangler
  // dev reloads on them) cannot change the code between the deployments.
  const bundle = join(workDir, 'bundle');
  await rm(bundle, { recursive: true, force: true });
  await run(join(ROOT, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--config', join(ROOT, 'wrangler.toml'), '--outdir', bundle]);
  const [rootFront, template] = await Promise.all(['wrangler.toml', 'wrangler.model-a.toml'].map((f) => readFile(join(ROOT, f), 'utf8')));
  // Written to other folders below: the page's assets folder is named from here.
  const front = absoluteAssets(rootFront!, ROOT);

  const samples: MixedSample[] = [];
  for (const deployment of ['one Worker', 'Worker per model'] as const) {
    const paths: string[] = [];
    for (const config of deploymentConfigs(deployment, models, front, template!, 'bundle/index.js')) {
      const dir = join(workDir, deployment.replace(/ /g, '-'), config.name);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await cp(bundle, join(dir, 'bundle'), { recursive: true });
      await writeFile(join(dir, 'wrangler.toml'), config.toml);
      paths.push(join(dir, 'wrangler.toml'));
    }
    samples.push(...(await measure(deployment, paths, { models, rounds, block, warmup, photo, persistTo })));
  }

  const all = rows(samples, models);
  console.log(table(all, command));
  if (values.json) await writeFile(values.json, JSON.stringify({ command, date: new Date().toISOString(), models, rounds, block, photo: values.photo, rows: all, samples }, null, 2));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.on('SIGINT', () => {
    void Promise.all([...WranglerDev.live].map((d) => d.stop())).finally(() => process.exit(130));
  });
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}

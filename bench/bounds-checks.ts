/**
 * Why warm inference is slower in workerd than onnxruntime-web in Node (ResNet-50 int8: ~1.2x):
 * Node installs V8's WebAssembly trap handler, so V8 guards wasm memory with guard pages and
 * a signal handler; workerd does not enable it, so V8 emits an explicit bounds check on every
 * wasm load and store. Four variants, interleaved, show it: each runtime with its defaults and
 * each with the other's bounds checking (workerd with --no-wasm-bounds-checks, Node with
 * --wasm-enforce-bounds-checks).
 *
 *   npx tsx bench/bounds-checks.ts [--model models/out/resnet50v1/int8/model.onnx] [--warmup 20] [--rounds 30]
 *
 * Diagnosis only: deployed Workers cannot set V8 flags, and --no-wasm-bounds-checks without a
 * trap handler makes out-of-bounds wasm accesses unchecked (unsafe outside this experiment).
 * wrangler 4.86's miniflare ignores MINIFLARE_WORKERD_V8_FLAGS, so the Worker (bench/bounds/,
 * on src/onnx/session.ts) is bundled with `wrangler deploy --dry-run` and run by `workerd
 * serve` from a capnp config written here. Node runs bench/node-child.ts (same session
 * options). Prints a markdown table and writes it to bench/tmp/bounds-checks.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { NodeRuntimeProcess } from './node-runtimes';
import { summarize, median } from './stats';
import { freePort } from './workerd';
import { readManifest, ROOT } from '../models/src/paths';
import { run } from '../models/src/run';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/out/resnet50v1/int8/model.onnx' },
    warmup: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '30' },
  },
});
const modelPath = resolve(ROOT, values.model);
const warmup = Number(values.warmup);
const rounds = Number(values.rounds);
if (!existsSync(modelPath) || !(warmup >= 0) || !(rounds >= 1)) throw new Error(`usage: npx tsx bench/bounds-checks.ts [--model path/model.onnx] [--warmup N] [--rounds N]`);
if (!existsSync(join(ROOT, 'src/onnx/warmup.bin'))) throw new Error('src/onnx/warmup.bin is missing: run `npm run build:warmup`');

const scratch = join(ROOT, 'bench/tmp/bounds-checks');
const config = join(ROOT, 'bench/bounds/wrangler.toml');
const WORKERD_PACKAGE = [join(ROOT, 'node_modules/wrangler/node_modules/workerd'), join(ROOT, 'node_modules/workerd')].find(existsSync)!;
const version = (dir: string): string => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;

/** Same values as input() in bench/bounds/worker.ts. */
function input(): Float32Array {
  const x = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 1000) / 500 - 1;
  return x;
}

/** Input and output names and prepacking from the manifest beside the model, else from the model itself. */
async function modelIo(): Promise<{ input: string; output: string; disablePrepacking: boolean }> {
  if (existsSync(join(dirname(modelPath), 'manifest.json'))) {
    const m = await readManifest(dirname(modelPath));
    return { input: m.input.name, output: m.output.name, disablePrepacking: m.session?.disablePrepacking ?? false };
  }
  const ort = await import('onnxruntime-node');
  const s = await ort.InferenceSession.create(modelPath);
  const io = { input: s.inputNames[0]!, output: s.outputNames[0]!, disablePrepacking: false };
  await s.release();
  return io;
}

/** Bundles the diagnostic Worker; its modules in capnp syntax, the entry point first. */
async function bundle(dir: string): Promise<string[]> {
  await rm(dir, { recursive: true, force: true });
  await run(join(ROOT, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--config', config, '--outdir', dir]);
  const kinds: Record<string, string> = { js: 'esModule', wasm: 'wasm', bin: 'data', txt: 'text' };
  const files = (await readdir(dir)).filter((f) => !f.endsWith('.map') && f !== 'README.md').sort((a, b) => Number(b === 'worker.js') - Number(a === 'worker.js'));
  if (files[0] !== 'worker.js') throw new Error(`no worker.js in ${dir}`);
  return files.map((f) => {
    const kind = kinds[f.slice(f.lastIndexOf('.') + 1)];
    if (!kind) throw new Error(`bundle module ${f}: unknown type`);
    return `(name = ${JSON.stringify(f)}, ${kind} = embed ${JSON.stringify(`bundle/${f}`)})`;
  });
}

interface Runner {
  /** Class of the first run's largest logit: all variants must agree. */
  top1: number;
  /** One warm inference, milliseconds as measured inside the runtime. */
  once(): Promise<number>;
  stop(): void;
}

const workerds = new Set<ChildProcess>();
const nodes = new Set<NodeRuntimeProcess>();
function killGroup(child: ChildProcess): void {
  workerds.delete(child);
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
function stopAll(): void {
  for (const c of workerds) killGroup(c);
  for (const p of nodes) p.kill();
}
process.on('exit', stopAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

async function startWorkerd(name: string, modules: string[], v8Flags: string[], io: Awaited<ReturnType<typeof modelIo>>): Promise<Runner> {
  const port = await freePort();
  const date = /^compatibility_date = "(.*)"$/m.exec(readFileSync(config, 'utf8'))![1]!;
  const capnp = join(scratch, `${name.replace(/\W+/g, '-')}.capnp`);
  await writeFile(
    capnp,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
  v8Flags = [ ${v8Flags.map((f) => JSON.stringify(f)).join(', ')} ],
);
const worker :Workerd.Worker = (
  modules = [ ${modules.join(',\n    ')} ],
  compatibilityDate = "${date}",
);
`,
  );
  // Own process group, killed with everything else on exit.
  const child = spawn(join(WORKERD_PACKAGE, 'bin/workerd'), ['serve', '--experimental', capnp], { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  workerds.add(child);
  let log = '';
  for (const s of [child.stdout, child.stderr]) s.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-3000)));
  const base = `http://127.0.0.1:${port}`;
  const call = async (path: string, init?: RequestInit): Promise<unknown> => {
    const res = await fetch(`${base}${path}`, init);
    if (!res.ok) throw new Error(`${name} ${path}: ${res.status} ${await res.text()}\n${log}`);
    return res.json();
  };
  for (let t = Date.now(); ; await new Promise((r) => setTimeout(r, 100))) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${log}`);
    if (Date.now() - t > 60_000) throw new Error(`${name} did not answer in 60 s:\n${log}`);
    if (await fetch(base).then((r) => r.arrayBuffer().then(() => true), () => false)) break;
  }
  const query = new URLSearchParams({ input: io.input, output: io.output, prepacking: io.disablePrepacking ? '0' : '1' });
  const { top1 } = (await call(`/load?${query}`, { method: 'POST', body: readFileSync(modelPath) })) as { top1: number };
  if (warmup > 0) await call(`/run?n=${warmup}`);
  return {
    top1,
    once: async () => ((await call('/run?n=1')) as { times: number[] }).times[0]!,
    stop: () => killGroup(child),
  };
}

async function startNode(flags: string[], inputPath: string, disablePrepacking: boolean): Promise<Runner> {
  const { process: p, cold } = await NodeRuntimeProcess.start('ort-web', modelPath, inputPath, warmup, disablePrepacking, undefined, flags);
  nodes.add(p);
  return {
    top1: cold.top1,
    once: async () => (await p.run(1))[0]!,
    stop: () => {
      p.kill();
      nodes.delete(p);
    },
  };
}

const io = await modelIo();
await mkdir(scratch, { recursive: true });
const inputPath = join(scratch, 'input.f32');
await writeFile(inputPath, new Uint8Array(input().buffer));
console.error('bundling bench/bounds/worker.ts');
const modules = await bundle(join(scratch, 'bundle'));

const variants: Array<{ name: string; start: () => Promise<Runner> }> = [
  { name: 'node (default)', start: () => startNode([], inputPath, io.disablePrepacking) },
  { name: 'node --wasm-enforce-bounds-checks', start: () => startNode(['--wasm-enforce-bounds-checks'], inputPath, io.disablePrepacking) },
  { name: 'workerd (default)', start: () => startWorkerd('workerd-default', modules, [], io) },
  { name: 'workerd --no-wasm-bounds-checks', start: () => startWorkerd('workerd-no-bounds-checks', modules, ['--no-wasm-bounds-checks'], io) },
];
// One at a time, so that no warm-up competes with another for the cores.
const runners: Runner[] = [];
for (const v of variants) {
  console.error(`starting ${v.name}: session, first run, ${warmup} warm-up runs`);
  runners.push(await v.start());
}
const times: number[][] = variants.map(() => []);
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < variants.length; k++) {
    const i = (k + r) % variants.length;
    times[i]!.push(await runners[i]!.once());
  }
  if ((r + 1) % 10 === 0) console.error(`round ${r + 1}/${rounds}`);
}
for (const runner of runners) runner.stop();

const base = times[0]!;
const baseMedian = median(base);
const top1s = new Set(runners.map((r) => r.top1));
const argv = process.argv.slice(2);
const markdown = [
  `## wasm bounds checks: workerd vs onnxruntime-web in Node, ${relative(ROOT, modelPath)}`,
  '',
  '| variant | median ms | p95 ms | ratio of medians | paired median ratio |',
  '|---|---|---|---|---|',
  ...variants.map((v, i) => {
    const s = summarize(times[i]!);
    const paired = median(times[i]!.map((t, r) => t / base[r]!));
    return `| ${v.name} | ${s.median.toFixed(1)} | ${s.p95.toFixed(1)} | ${(s.median / baseMedian).toFixed(2)}x | ${paired.toFixed(2)}x |`;
  }),
  '',
  `${rounds} rounds after ${warmup} warm-up runs, one inference per variant per round in rotating order, timed with performance.now() inside the runtime; ratios against node (default).` +
    ` Top-1 class of the first run: ${top1s.size === 1 ? `${[...top1s][0]} in all variants` : `**differs**: ${runners.map((r, i) => `${variants[i]!.name} ${r.top1}`).join(', ')}`}.`,
  '',
  `- machine: ${cpus()[0]?.model ?? 'unknown'} (${cpus().length} cores), ${process.platform} ${process.arch}`,
  `- date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
  `- versions: workerd ${version(WORKERD_PACKAGE)} (wrangler ${version(join(ROOT, 'node_modules/wrangler'))}), node ${process.version} (V8 ${process.versions.v8}), onnxruntime-web ${version(join(ROOT, 'node_modules/onnxruntime-web'))}`,
  `- command: \`npx tsx bench/bounds-checks.ts${argv.length ? ` ${argv.join(' ')}` : ''}\``,
  '',
].join('\n');
console.log(markdown);
await writeFile(join(ROOT, 'bench/tmp/bounds-checks.md'), markdown);
process.exit(0);

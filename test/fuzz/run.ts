/**
 * The long fuzz run: every target (or --target a,b) for --seconds each (default 60), one after
 * the other, each in a child process watched for hangs. Prints executions per target and every
 * distinct invariant violation, and writes each new one to test/fuzz/regressions/ (input .bin
 * and a note .txt), where test/node/fuzz.test.ts replays it.
 *
 *   npx tsx test/fuzz/run.ts [--target jpeg] [--seconds 600] [--seed 1] [--coverage]
 *
 * --coverage makes it coverage-guided (test/fuzz/coverage.ts: V8 block coverage of src/ after
 * every input; inputs that reach new blocks join the corpus the mutations start from). It costs
 * ~8 ms an input (the inspector reports the whole isolate), so it runs ~10x fewer inputs.
 *
 * Seeds: the child runs fast-check from --seed, then --seed + 1, ... (CHUNK inputs each), so a
 * failure's seed reproduces it with `fuzz(target, { seed, numRuns: CHUNK })`.
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CoverageFeedback } from './coverage';
import { fuzz, newStats, note, signature, type Failure, type Stats } from './harness';

const CHUNK = 500;
const HANG_MS = 30_000;
/** Most coverage finds a child adds to its corpus. */
const MAX_ADDED = 5000;
const REGRESSIONS = fileURLToPath(new URL('./regressions/', import.meta.url));

/** The last `--name value` (so that `npm run fuzz -- --seconds 60` overrides the script's own). */
function arg(name: string): string | undefined {
  const i = process.argv.lastIndexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

type Message =
  | { kind: 'beat'; executions: number }
  | { kind: 'failure'; failure: Omit<Failure, 'bytes'> & { bytes: string }; seed: number }
  | { kind: 'done'; stats: Omit<Stats, 'failures'>; coverage: { blocks: number; added: number } | null };

async function child(): Promise<void> {
  // .wasm imports (libwebp) as under wrangler.
  await import('../../models/src/node-wasm');
  const { TARGETS } = await import('./targets/index');
  const target = TARGETS[arg('target')!]!;
  const until = Date.now() + Number(arg('seconds')) * 1000;
  let seed = Number(arg('seed'));
  const current = arg('current')!;
  const stats = newStats();
  const send = (m: Message) => process.send!(m);
  let lastBeat = 0;
  let index = 0;
  // The input under test, kept on disk for the parent (a hung child can send nothing): its
  // seed and index (which reproduce it), then its bytes; one write per input, at offset 0.
  const fd = openSync(current, 'w');
  const onInput = (c: { bytes: Uint8Array; how: string }) => {
    const head = Buffer.alloc(12);
    head.writeUInt32LE(seed, 0);
    head.writeUInt32LE(index++, 4);
    head.writeUInt32LE(c.bytes.length, 8);
    writeSync(fd, Buffer.concat([head, c.bytes]), 0, 12 + c.bytes.length, 0);
    const now = Date.now();
    if (now - lastBeat > 500) {
      lastBeat = now;
      send({ kind: 'beat', executions: stats.executions });
    }
  };
  // --coverage: inputs that reach new blocks of src/ (V8 block coverage) join the corpus.
  let onDone: ((c: { bytes: Uint8Array }) => void) | undefined;
  let cov: CoverageFeedback | null = null;
  let added = 0;
  if (process.argv.includes('--coverage')) {
    cov = new CoverageFeedback();
    onDone = (c) => {
      if (cov!.newBlocks() > 0 && target.corpus && added < MAX_ADDED) target.corpus.add(`found#${added++}`, c.bytes);
    };
  }
  while (Date.now() < until) {
    const before = stats.failures.length;
    index = 0;
    await fuzz(target, { seed, numRuns: CHUNK, stats, onInput, ...(onDone ? { onDone } : {}) });
    for (const f of stats.failures.slice(before)) send({ kind: 'failure', failure: { ...f, bytes: Buffer.from(f.bytes).toString('base64') }, seed });
    seed++;
  }
  const { failures: _, ...rest } = stats;
  send({ kind: 'done', stats: rest, coverage: cov ? { blocks: cov.size, added } : null });
  process.exit(0);
}

interface Report {
  target: string;
  executions: number;
  seconds: number;
  ok: number;
  statuses: Record<string, number>;
  masked: Record<string, number>;
  slowestMs: number;
  slowestHow: string;
  violations: number;
  distinct: string[];
  hangs: number;
  coverage: string[];
}

function save(f: Failure, seed: number | string, seen: Set<string>, known: Set<string>, report: Report): void {
  report.violations++;
  const sig = signature(f);
  if (seen.has(sig)) return;
  seen.add(sig);
  if (known.has(sig)) {
    report.distinct.push(`${f.kind}: ${f.message} (seed ${seed}; already in regressions/)`);
    console.log(`  ${f.target}: ${f.kind}: ${f.message.slice(0, 200)}\n    (already in regressions/, not saved again)`);
    return;
  }
  report.distinct.push(`${f.kind}: ${f.message} (seed ${seed})`);
  mkdirSync(REGRESSIONS, { recursive: true });
  const id = createHash('sha256').update(f.bytes).digest('hex').slice(0, 8);
  const base = join(REGRESSIONS, `${f.target}-seed${seed}-${id}`);
  writeFileSync(`${base}.bin`, f.bytes);
  writeFileSync(`${base}.txt`, note(f, seed));
  console.log(`  ${f.target}: ${f.kind}: ${f.message.slice(0, 200)}\n    -> ${base}.bin`);
}

/** Signatures of the target's failures already in regressions/ (from their notes): not saved again. */
function knownSignatures(target: string): Set<string> {
  const out = new Set<string>();
  if (!existsSync(REGRESSIONS)) return out;
  for (const f of readdirSync(REGRESSIONS)) {
    if (!f.startsWith(`${target}-`) || !f.endsWith('.txt')) continue;
    const text = readFileSync(join(REGRESSIONS, f), 'utf8');
    const kind = text.match(/^kind: (.*)$/m)?.[1];
    const message = text.match(/^message: (.*)$/m)?.[1];
    if (kind && message) out.add(signature({ target, kind: kind as Failure['kind'], message }));
  }
  return out;
}

/** The input a child was on (see onInput): its seed, its index in that seed's run, its bytes. */
function lastInput(path: string): { seed: number; how: string; bytes: Uint8Array } | null {
  if (!existsSync(path)) return null;
  const b = readFileSync(path);
  if (b.length < 12) return null;
  const seed = b.readUInt32LE(0);
  const index = b.readUInt32LE(4);
  const n = b.readUInt32LE(8);
  return { seed, how: `seed ${seed}, input #${index} of its run`, bytes: new Uint8Array(b.subarray(12, 12 + n)) };
}

async function runTarget(target: string, seconds: number, firstSeed: number): Promise<Report> {
  const report: Report = { target, executions: 0, seconds, ok: 0, statuses: {}, masked: {}, slowestMs: 0, slowestHow: '', violations: 0, distinct: [], hangs: 0, coverage: [] };
  const seen = new Set<string>();
  const known = knownSignatures(target);
  const started = Date.now();
  let seed = firstSeed;
  while (Date.now() - started < seconds * 1000 - 2000) {
    const left = Math.max(5, Math.round(seconds - (Date.now() - started) / 1000));
    const current = join(tmpdir(), `fuzz-current-${process.pid}-${target}`);
    const args = ['--child', '--target', target, '--seconds', String(left), '--seed', String(seed), '--current', current];
    if (process.argv.includes('--coverage')) args.push('--coverage');
    const proc = fork(fileURLToPath(import.meta.url), args, {
      execArgv: process.execArgv,
    });
    let beat = Date.now();
    let lastExecutions = 0;
    let done = false;
    proc.on('message', (m: Message) => {
      beat = Date.now();
      if (m.kind === 'beat') lastExecutions = m.executions;
      else if (m.kind === 'failure') save({ ...m.failure, bytes: new Uint8Array(Buffer.from(m.failure.bytes, 'base64')) }, m.seed, seen, known, report);
      else {
        done = true;
        if (m.coverage) report.coverage.push(`${m.coverage.blocks} blocks, ${m.coverage.added} inputs added`);
        const s = m.stats;
        report.executions += s.executions;
        report.ok += s.ok;
        if (s.slowestMs > report.slowestMs) {
          report.slowestMs = s.slowestMs;
          report.slowestHow = s.slowestHow;
        }
        for (const [k, v] of Object.entries(s.statuses)) report.statuses[k] = (report.statuses[k] ?? 0) + v;
        for (const [k, v] of Object.entries(s.masked)) report.masked[k] = (report.masked[k] ?? 0) + v;
      }
    });
    const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const watchdog = setInterval(() => {
      if (Date.now() - beat > HANG_MS) {
        proc.kill('SIGKILL');
        // The input it was on is the one that hung.
        const last = lastInput(current);
        if (last) {
          report.hangs++;
          save({ target, kind: 'time', message: `no answer within ${HANG_MS} ms (killed)`, how: last.how, bytes: last.bytes, ms: HANG_MS }, last.seed, seen, known, report);
        }
      }
    }, 1000);
    const code = await exit;
    clearInterval(watchdog);
    if (!done) {
      // Killed (hang) or crashed (an exception outside the property, an out-of-memory): the
      // executions before it still count; start again from the next seed.
      report.executions += lastExecutions;
      if (code !== null && code !== 0) {
        const last = lastInput(current) ?? { seed, how: '?', bytes: new Uint8Array(0) };
        save({ target, kind: 'exception', message: `the fuzzing process died (exit ${code})`, how: last.how, bytes: last.bytes, ms: 0 }, last.seed, seen, known, report);
      }
    }
    seed += 1000;
  }
  return report;
}

async function main(): Promise<void> {
  const { TARGETS } = await import('./targets/index');
  const names = (arg('target') ?? Object.keys(TARGETS).join(',')).split(',');
  const seconds = Number(arg('seconds') ?? 60);
  const seed = Number(arg('seed') ?? Date.now() % 1_000_000);
  for (const n of names) if (!TARGETS[n]) throw new Error(`unknown target ${n}: ${Object.keys(TARGETS).join(', ')}`);
  console.log(`fuzzing ${names.join(', ')} for ${seconds} s each, seeds from ${seed}`);
  const reports: Report[] = [];
  for (const name of names) {
    const r = await runTarget(name, seconds, seed);
    reports.push(r);
    const statuses = Object.entries(r.statuses).map(([k, v]) => `${k}: ${v}`).join(', ');
    console.log(
      `${name}: ${r.executions} executions in ${r.seconds} s (${(r.executions / r.seconds).toFixed(0)}/s); ok ${r.ok}, ${statuses}; ` +
        `slowest ${r.slowestMs.toFixed(0)} ms; ${r.violations} violations (${r.distinct.length} distinct)${r.hangs ? `, ${r.hangs} hangs` : ''}`,
    );
    console.log(`  slowest: ${r.slowestHow.slice(0, 300)}`);
    if (r.coverage.length) console.log(`  coverage-guided: ${r.coverage.join('; ')}`);
    for (const [m, n] of Object.entries(r.masked)) console.log(`  masked as a 4xx (${n}x): ${m}`);
  }
  console.log('\ntarget  executions  violations');
  for (const r of reports) console.log(`${r.target.padEnd(8)}${String(r.executions).padStart(10)}  ${r.violations}`);
  process.exitCode = reports.some((r) => r.violations > 0) ? 1 : 0;
}

if (process.argv.includes('--child')) await child();
else await main();

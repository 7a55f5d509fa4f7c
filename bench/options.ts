/**
 * Command line of `npm run bench`: which models, how many iterations, quick (CI-sized) or not.
 */
import { parseArgs } from 'node:util';
import type { Variant } from '../models/src/paths';

export interface ModelSpec {
  /** Zoo id, e.g. resnet50v1. */
  id: string;
  variant: Variant;
}

export interface BenchOptions {
  models: ModelSpec[];
  /** Measured samples per figure (requests, runs or calls; each figure states its own count). */
  iterations: number;
  /** Requests/runs discarded before measuring, long enough for V8 to tier up the wasm. */
  warmup: number;
  /** Fresh wrangler dev processes per model for the cold path (one sample each). */
  coldRuns: number;
  /** Requests per concurrency level of the throughput test, at least 2 x the concurrency. */
  throughputRequests: number;
  /** The int8 model of figure 6, served split in `stages` Workers and whole; null: skip it. */
  split: { id: string; stages: number } | null;
  /** Figure 7: rounds of cold bursts per model (whole and split); 0 skips it. */
  burstRounds: number;
  quick: boolean;
  /** Where report.md and report.json go. */
  outDir: string;
  /** Scratch: models, JPEGs, tensors (cached across runs). */
  workDir: string;
  /** wrangler dev --persist-to folder (local R2); uploads into it are cached too. */
  persistTo: string;
  /** How the run was started, for the report header. */
  command: string;
  onProgress?: (line: string) => void;
}

/** Warm requests and runs are measured in blocks of this many, the runtimes taking turns. */
export const BLOCK = 5;

export const USAGE = 'npm run bench -- [--quick] [--models resnet18v1,resnet50v1:int8] [--iterations N] [--split resnet152v1:3|none] [--bursts 5|0]';

/** `resnet152v1:3` (the id and its number of stages, 2 or 3: the stage Workers there are), or `none`. */
function parseRounds(value: string): number {
  if (!/^\d+$/.test(value)) throw new Error(`--bursts: "${value}" is not a number of rounds (0 skips figure 7)`);
  return Number(value);
}

export function parseSplit(value: string): BenchOptions['split'] {
  if (value === 'none') return null;
  const m = /^(resnet(?:18|34|50|101|152)v[12]):([23])$/.exec(value);
  if (!m) throw new Error(`--split: "${value}" is not <zoo id>:<2|3> (e.g. resnet152v1:3) or none`);
  return { id: m[1]!, stages: Number(m[2]) };
}

const DEFAULT_MODELS = ['resnet18v1', 'resnet50v1'];

/** `resnet50v1` means both variants (int8 first); `resnet50v1:int8` or `:fp32` just one. */
export function parseModels(list: string): ModelSpec[] {
  const out: ModelSpec[] = [];
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [id, variant, extra] = raw.split(':');
    if (!id || !/^resnet(18|34|50|101|152)v[12]$/.test(id) || extra !== undefined) {
      throw new Error(`--models: "${raw}" is not <zoo id>[:int8|:fp32], e.g. resnet50v1 or resnet50v1:int8`);
    }
    if (variant !== undefined && variant !== 'int8' && variant !== 'fp32') throw new Error(`--models: unknown variant in "${raw}"`);
    const variants: Variant[] = variant ? [variant] : ['int8', 'fp32'];
    for (const v of variants) if (!out.some((m) => m.id === id && m.variant === v)) out.push({ id, variant: v });
  }
  if (out.length === 0) throw new Error('--models: no model given');
  return out;
}

export function parseCommandLine(argv: string[], defaults: Pick<BenchOptions, 'outDir' | 'workDir' | 'persistTo' | 'command'>): BenchOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        models: { type: 'string' },
        iterations: { type: 'string' },
        split: { type: 'string' },
        bursts: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\nusage: ${USAGE}`);
  }
  const { values } = parsed;
  if (values.help) throw new Error(`usage: ${USAGE}`);
  let iterations: number | undefined;
  if (values.iterations !== undefined) {
    iterations = Number(values.iterations);
    if (!/^\d+$/.test(values.iterations) || iterations < 2) throw new Error(`--iterations must be an integer >= 2, got ${values.iterations}`);
  }
  return benchOptions({
    quick: values.quick,
    models: values.models !== undefined ? parseModels(values.models) : undefined,
    iterations,
    ...(values.split !== undefined ? { split: parseSplit(values.split) } : {}),
    ...(values.bursts !== undefined ? { burstRounds: parseRounds(values.bursts) } : {}),
    ...defaults,
  });
}

/** Fills in the defaults of a full or a quick run; shared by the CLI and the test. */
export function benchOptions(o: Partial<BenchOptions> & Pick<BenchOptions, 'outDir' | 'workDir' | 'persistTo' | 'command'>): BenchOptions {
  const quick = o.quick ?? false;
  const iterations = o.iterations ?? (quick ? 3 : 30);
  return {
    quick,
    // Quick keeps resnet18v1 in both variants so that every figure and target still has data.
    models: o.models ?? parseModels(quick ? 'resnet18v1' : DEFAULT_MODELS.join(',')),
    iterations,
    // Long enough for V8 to tier up ORT's wasm in workerd (the report's tier-up series shows
    // whether it was); quick mode accepts a less settled figure to fit CI.
    warmup: o.warmup ?? (quick ? 3 : 20),
    coldRuns: o.coldRuns ?? (quick ? 1 : 3),
    // At least 2 requests per slot in a full run; quick fills each of the 16 slots once.
    throughputRequests: o.throughputRequests ?? (quick ? iterations : Math.max(iterations, 32)),
    // The deepest zoo model in three Workers; quick splits the ResNet-18 it builds anyway.
    // Quick: two stages (one stage Worker less to start cold than the full run's three).
    split: o.split !== undefined ? o.split : quick ? { id: 'resnet18v1', stages: 2 } : { id: 'resnet152v1', stages: 3 },
    // The target is 5 rounds of 16 clients x 20 s each; quick mode leaves it to
    // test/load/burst.test.ts, which runs in the same npm test.
    burstRounds: o.burstRounds ?? (quick ? 0 : 5),
    outDir: o.outDir,
    workDir: o.workDir,
    persistTo: o.persistTo,
    command: o.command,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  };
}

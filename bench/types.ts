/** Shape of bench/report.json. Milliseconds unless a name says otherwise. */
import type { ColdBurstFigure } from './burst';
import type { NodeStageResult } from './node-stages';
import type { Summary } from './stats';
import type { Stages } from './workerd';
import type { Variant } from '../models/src/paths';

export interface Meta {
  date: string;
  machine: { cpuModel: string; cpus: number; memoryGiB: number; os: string; node: string };
  versions: Record<string, string>;
  /** Git commit of the measured Worker bundle, and uncommitted changes at that time. */
  code: string;
  command: string;
  quick: boolean;
  iterations: number;
  warmup: number;
  coldRuns: number;
  throughputRequests: number;
  /** Wall time of the whole run, seconds. */
  durationS: number;
}

export interface ColdSample {
  /** wrangler dev spawn to first answer (GET /models, no session), not part of the cold request. */
  readyMs: number;
  clientMs: number;
  stages: Stages;
  top1: number | null;
}

export interface WorkerdModelResult {
  cold: ColdSample[];
  coldClient: Summary;
  coldModel: Summary;
  coldInference: Summary;
  /** Inference of every 640x480 request of the last fresh isolate in order: the cold one, the warm-up, the measured ones. */
  series: number[];
  /** 1-based request number from which the rolling median of 5 is within 1.15x of the warm median, or null. */
  settledAt: number | null;
  warmInference: Summary;
  warmServerTotal: Summary;
  warmClient: Summary;
  top1: number | null;
}

export interface NodeRuntimeResult {
  importMs: number;
  createMs: number;
  firstRunMs: number;
  /** createMs + firstRunMs: the cold path. */
  coldMs: number;
  warm: Summary;
  top1: number;
}

export interface MemoryResult {
  wasmHeapAfterCreate: number;
  wasmHeapAfterRun: number;
  wasmHeapPeak: number;
  jsHeapDelta: number;
  /** wasmHeapPeak + max(0, jsHeapDelta), bytes. */
  total: number;
  fits: boolean;
}

export interface ModelResult {
  label: string;
  id: string;
  variant: Variant;
  servedId: string;
  precision: string;
  /** The manifest's session.disablePrepacking, applied in every runtime. */
  disablePrepacking: boolean;
  fileBytes: number;
  build: { cached: boolean; ms: number };
  workerd?: WorkerdModelResult;
  ortWeb?: NodeRuntimeResult;
  ortNode?: NodeRuntimeResult;
  memory?: MemoryResult;
  /** Warm inference medians: workerd / ort-web in Node, workerd / ort-node. */
  ratios: { workerdOverOrtWeb: number | null; workerdOverOrtNode: number | null };
  /** Whether workerd, ort-web and ort-node gave the same top-1 class for the same input. */
  top1Agrees: boolean | null;
  /** Server-side total per 640x480 image at concurrency 1, and its price. */
  cost: { cpuMsPerImage: number; usdPerMillion: number } | null;
  /** Attempts lost to wrangler dev's proxy and sent again (see PROXY_RESET in workerd.ts). */
  proxyResets: number;
  errors: string[];
}

export interface SizeResult {
  image: string;
  bytes: number;
  client: Summary;
  decode: Summary;
  preprocess: Summary;
  inference: Summary;
  serverTotal: Summary;
  /** Medians: client - (model + decode + preprocess + inference). */
  rest: number;
  /** Of rest: server total - stages (multipart parse, postprocess, JSON). */
  restServer: number;
  /** Of rest: client - server total (HTTP through wrangler dev's proxy, loopback). */
  restTransport: number;
  cpuMsPerImage: number;
  usdPerMillion: number;
  errors: number;
  proxyResets: number;
}

export interface ThroughputResult {
  concurrency: number;
  requests: number;
  ok: number;
  errors: number;
  errorSamples: string[];
  /** Attempts lost to wrangler dev's proxy and sent again; not errors of the Worker. */
  proxyResets: number;
  /** Successful answers whose `model` stage shows a session load (0 unless the isolate restarted). */
  sessionLoads: number;
  wallMs: number;
  imagesPerSecond: number;
  client: Summary | null;
}

export interface EndToEnd {
  model: string;
  warmupPerSize: number;
  sizes: SizeResult[];
  throughputImage: string;
  throughput: ThroughputResult[];
}

export type TargetStatus = 'PASS' | 'MISS' | 'NOT MEASURED';

export interface Target {
  id: string;
  goal: string;
  /** What was measured, on which model. */
  measured: string;
  value: number | null;
  status: TargetStatus;
  detail: string;
}

export interface SplitFigure {
  /** The zoo model, int8, served split and whole. */
  model: string;
  stages: number;
  stageBytes: number[];
  /** The tensors handed from stage to stage, e.g. `uint8[Nx1024x14x14]`. */
  handover: string[];
  /** First request in fresh isolates: the split one loads each stage in its own Worker on first use. */
  cold: Record<'split' | 'whole', Array<{ clientMs: number; model: number; inference: number }>>;
  warm: { splitInference: Summary | null; wholeInference: Summary | null; splitClient: Summary | null; wholeClient: Summary | null };
  /** Warm inference median, split / whole: the cost of the hops between Workers. */
  overhead: number | null;
  /** onnxruntime's heap as each Worker reported it from inside workerd (stage -1: the whole model's isolate). */
  isolates: Array<{ stage: number; isolate: string; wasmHeapBytes: number }>;
  /** onnxruntime-web in Node, a fresh process per stage (stage -1: the whole model). */
  nodeHeaps: Array<{ stage: number; bytes: number; wasmHeapPeak: number; jsHeapDelta: number }>;
  errors: string[];
}

export interface BenchReport {
  meta: Meta;
  prices: { workersUsdPerMillionCpuMs: number; workersUsdPerMillionRequests: number; workersAiResnet50UsdPerMillionImages: number; sources: string[] };
  memoryLimitBytes: number;
  models: ModelResult[];
  failures: Array<{ model: string; stage: string; error: string }>;
  endToEnd: EndToEnd | null;
  nodeStages: NodeStageResult[];
  split: SplitFigure | null;
  /** Figure 7: cold bursts on the whole and a split model (bench/burst.ts); null: skipped. */
  coldBursts: ColdBurstFigure[] | null;
  targets: Target[];
}
